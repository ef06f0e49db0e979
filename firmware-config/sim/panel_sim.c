/* panel_sim.c: plays the bedside panel on a serial line (a tty or a pty), with the generated C
 * codec (firmware-config/generated/). What a real panel's firmware does with its buttons, it does
 * with commands read from stdin, one per line; what the module sends, it prints on stdout, one
 * line per event. The tests (test/panel-c.test.ts) and the bench drive it. POSIX C99.
 *
 * Build:  gcc -std=c99 -Wall -Wextra -O2 -I firmware-config/generated \
 *             firmware-config/sim/panel_sim.c firmware-config/generated/panel_codec.c -o panel_sim
 * Run:    panel_sim TTY [--heartbeat MS] [--no-hello]
 *
 * Like the firmware, it sends HELLO when it starts (unless --no-hello) and when the module sends
 * HELLO_REQUEST, a HEARTBEAT every MS milliseconds (default PANEL_HEARTBEAT_MS; 0: none), ACKs
 * WELCOME, LEDS and STATUS, and NAKs what it cannot take (unknown type, bad length, bad value,
 * bad version; a CRC error when the header looks like ours).
 *
 * Commands (stdin):
 *   hello [HASHHEX]        HELLO (with another layout hash, to test a mismatch)
 *   press N | release N | click N   BUTTON N pressed / released / both
 *   slider RAW             SLIDER 0 with this raw reading
 *   heartbeat [on|off]     one HEARTBEAT now, or switch the periodic ones
 *   ack SEQ TYPE | nak SEQ TYPE REASON
 *   send TYPE HEX          a valid frame of any type (e.g. an unknown one) with this payload
 *   badcrc TYPE HEX        the same with a wrong CRC
 *   version V TYPE HEX     a valid frame with protocol version V
 *   raw HEX                these bytes as they are (garbage, partial frames)
 *   repeat                 the last frame again, same sequence number
 *   stats                  the receiver's counters
 *   quit
 * Output (stdout): "ready", "tx NAME seq=S len=L", "rx NAME seq=S ...", "bad crc|partial|oversized ...",
 * "nak-sent ...", "stats ...", "err ...", "gone" (the line hung up: exit 3), "bye".
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "panel_codec.h"

#define FIRMWARE_MAJOR 1u
#define FIRMWARE_MINOR 2u
#define FIRMWARE_PATCH 3u

static int tty = -1;
static uint8_t seq_out;
static uint8_t last_wire[PANEL_MAX_WIRE];
static size_t last_len;
static panel_rx_t rx;
static long heartbeat_ms = PANEL_HEARTBEAT_MS;
static long long next_heartbeat;
static uint16_t rx_errors;
static struct timespec started;

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)(t.tv_sec - started.tv_sec) * 1000 + (t.tv_nsec - started.tv_nsec) / 1000000;
}

static const char *type_name(uint8_t type) {
  switch (type) {
    case PANEL_MSG_HELLO: return "HELLO";
    case PANEL_MSG_BUTTON: return "BUTTON";
    case PANEL_MSG_SLIDER: return "SLIDER";
    case PANEL_MSG_HEARTBEAT: return "HEARTBEAT";
    case PANEL_MSG_ACK: return "ACK";
    case PANEL_MSG_NAK: return "NAK";
    case PANEL_MSG_HELLO_REQUEST: return "HELLO_REQUEST";
    case PANEL_MSG_WELCOME: return "WELCOME";
    case PANEL_MSG_LEDS: return "LEDS";
    case PANEL_MSG_STATUS: return "STATUS";
    default: return "UNKNOWN";
  }
}

static void gone(const char *why) {
  printf("gone %s\n", why);
  exit(3);
}

static void write_all(const uint8_t *b, size_t n) {
  while (n > 0) {
    ssize_t w = write(tty, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd p = { tty, POLLOUT, 0 };
        poll(&p, 1, 100);
        continue;
      }
      gone(strerror(errno));
    }
    b += w;
    n -= (size_t)w;
  }
}

static void send_wire(const uint8_t *wire, size_t n, uint8_t type, size_t len) {
  write_all(wire, n);
  memcpy(last_wire, wire, n);
  last_len = n;
  printf("tx %s seq=%u len=%u\n", type_name(type), (unsigned)seq_out, (unsigned)len);
  seq_out++;
}

static void send_frame(uint8_t type, const uint8_t *payload, size_t len) {
  uint8_t wire[PANEL_MAX_WIRE];
  size_t n = panel_frame_build(type, seq_out, payload, len, wire, sizeof wire);
  if (n == 0) {
    printf("err payload too long (%u bytes)\n", (unsigned)len);
    return;
  }
  send_wire(wire, n, type, len);
}

/* A frame with another version byte, or a wrong CRC. */
static void send_odd(uint8_t version, uint8_t type, const uint8_t *payload, size_t len, int bad_crc) {
  uint8_t body[PANEL_MAX_FRAME], wire[PANEL_MAX_WIRE];
  size_t n, enc;
  uint16_t crc;
  if (len > PANEL_MAX_PAYLOAD) {
    printf("err payload too long (%u bytes)\n", (unsigned)len);
    return;
  }
  body[0] = version;
  body[1] = type;
  body[2] = seq_out;
  memcpy(body + PANEL_HEADER_BYTES, payload, len);
  n = PANEL_HEADER_BYTES + len;
  crc = panel_crc16(body, n);
  if (bad_crc) crc ^= 0x5A5Au;
  panel_put_u16(body + n, crc);
  enc = panel_cobs_encode(body, n + PANEL_CRC_BYTES, wire);
  wire[enc] = PANEL_DELIMITER;
  send_wire(wire, enc + 1, type, len);
}

static void send_hello(uint32_t hash) {
  uint8_t p[PANEL_LEN_HELLO];
  p[0] = PANEL_PROTOCOL_VERSION;
  p[1] = FIRMWARE_MAJOR;
  p[2] = FIRMWARE_MINOR;
  p[3] = FIRMWARE_PATCH;
  panel_put_u32(p + 4, hash);
  p[8] = PANEL_BUTTON_COUNT;
  p[9] = PANEL_LED_COUNT;
  send_frame(PANEL_MSG_HELLO, p, sizeof p);
}

static void send_button(unsigned id, int pressed) {
  uint8_t p[PANEL_LEN_BUTTON];
  p[0] = (uint8_t)id;
  p[1] = pressed ? 1u : 0u;
  send_frame(PANEL_MSG_BUTTON, p, sizeof p);
}

static void send_heartbeat(void) {
  uint8_t p[PANEL_LEN_HEARTBEAT];
  panel_put_u32(p, (uint32_t)now_ms());
  panel_put_u16(p + 4, rx_errors);
  send_frame(PANEL_MSG_HEARTBEAT, p, sizeof p);
}

static void send_ack(uint8_t seq, uint8_t type) {
  uint8_t p[PANEL_LEN_ACK];
  p[0] = seq;
  p[1] = type;
  send_frame(PANEL_MSG_ACK, p, sizeof p);
}

static void send_nak(uint8_t seq, uint8_t type, uint8_t reason) {
  uint8_t p[PANEL_LEN_NAK];
  p[0] = seq;
  p[1] = type;
  p[2] = reason;
  printf("nak-sent seq=%u type=%u reason=%u\n", (unsigned)seq, (unsigned)type, (unsigned)reason);
  send_frame(PANEL_MSG_NAK, p, sizeof p);
}

/* A frame from the module. */
static void on_frame(const panel_frame_t *f) {
  uint8_t why;
  size_t i;
  if (f->version != PANEL_PROTOCOL_VERSION) {
    printf("bad version=%u type=%u seq=%u\n", (unsigned)f->version, (unsigned)f->type, (unsigned)f->seq);
    rx_errors++;
    send_nak(f->seq, f->type, PANEL_NAK_BAD_VERSION);
    return;
  }
  why = panel_check_payload(f->type, f->len, PANEL_SIDE_PANEL);
  if (why) {
    printf("rx %s seq=%u type=%u len=%u refused=%u\n", why == PANEL_NAK_UNKNOWN_TYPE ? "UNKNOWN" : type_name(f->type), (unsigned)f->seq,
           (unsigned)f->type, (unsigned)f->len, (unsigned)why);
    rx_errors++;
    send_nak(f->seq, f->type, why);
    return;
  }
  switch (f->type) {
    case PANEL_MSG_HELLO_REQUEST:
      printf("rx HELLO_REQUEST seq=%u\n", (unsigned)f->seq);
      send_hello(PANEL_LAYOUT_HASH);
      break;
    case PANEL_MSG_WELCOME:
      printf("rx WELCOME seq=%u protocol=%u status=%u heartbeat=%u\n", (unsigned)f->seq, (unsigned)f->payload[0], (unsigned)f->payload[1],
             (unsigned)panel_get_u16(f->payload + 2));
      send_ack(f->seq, f->type);
      break;
    case PANEL_MSG_LEDS:
      for (i = 0; i < f->len; i++)
        if (f->payload[i] > PANEL_LED_MODE_FAST) {
          printf("rx LEDS seq=%u bad-mode=%u led=%u\n", (unsigned)f->seq, (unsigned)f->payload[i], (unsigned)i);
          send_nak(f->seq, f->type, PANEL_NAK_BAD_VALUE);
          return;
        }
      printf("rx LEDS seq=%u modes=", (unsigned)f->seq);
      for (i = 0; i < f->len; i++) printf(i ? ",%u" : "%u", (unsigned)f->payload[i]);
      printf("\n");
      send_ack(f->seq, f->type);
      break;
    case PANEL_MSG_STATUS:
      for (i = 0; i < f->len; i++)
        if (f->payload[i] < 0x20u || f->payload[i] > 0x7Eu) {
          printf("rx STATUS seq=%u bad-char=%u\n", (unsigned)f->seq, (unsigned)f->payload[i]);
          send_nak(f->seq, f->type, PANEL_NAK_BAD_VALUE);
          return;
        }
      printf("rx STATUS seq=%u text=\"%.*s\"\n", (unsigned)f->seq, (int)f->len, (const char *)f->payload);
      send_ack(f->seq, f->type);
      break;
    case PANEL_MSG_ACK:
      printf("rx ACK seq=%u ack_seq=%u ack_type=%u\n", (unsigned)f->seq, (unsigned)f->payload[0], (unsigned)f->payload[1]);
      break;
    case PANEL_MSG_NAK:
      printf("rx NAK seq=%u nak_seq=%u nak_type=%u reason=%u\n", (unsigned)f->seq, (unsigned)f->payload[0], (unsigned)f->payload[1],
             (unsigned)f->payload[2]);
      break;
    default:
      break;
  }
}

static void on_byte(uint8_t b) {
  panel_frame_t f;
  switch (panel_rx_byte(&rx, b, &f)) {
    case PANEL_RX_FRAME:
      on_frame(&f);
      break;
    case PANEL_RX_BAD_CRC:
      rx_errors++;
      printf("bad crc type=%u seq=%u len=%u\n", (unsigned)f.type, (unsigned)f.seq, (unsigned)f.len);
      /* Only a header that looks like ours is trusted enough to NAK (so the sender can resend). */
      if (f.version == PANEL_PROTOCOL_VERSION && panel_check_payload(f.type, f.len, PANEL_SIDE_PANEL) == 0) send_nak(f.seq, f.type, PANEL_NAK_BAD_CRC);
      break;
    case PANEL_RX_PARTIAL:
      rx_errors++;
      printf("bad partial\n");
      break;
    case PANEL_RX_OVERSIZED:
      rx_errors++;
      printf("bad oversized\n");
      break;
    default:
      break;
  }
}

static int hex_bytes(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0;
  while (*s == ' ') s++;
  while (s[0] && s[0] != '\n' && s[0] != ' ') {
    unsigned v;
    if (!s[1] || sscanf(s, "%2x", &v) != 1 || n >= cap) return -1;
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return (int)n;
}

static void command(char *line) {
  unsigned a, b, c;
  char word[16];
  uint8_t bytes[512];
  int n;
  if (sscanf(line, "%15s", word) != 1) return;
  if (!strcmp(word, "hello")) {
    unsigned long h;
    if (sscanf(line, "hello %lx", &h) == 1) send_hello((uint32_t)h);
    else send_hello(PANEL_LAYOUT_HASH);
  } else if (sscanf(line, "press %u", &a) == 1) {
    send_button(a, 1);
  } else if (sscanf(line, "release %u", &a) == 1) {
    send_button(a, 0);
  } else if (sscanf(line, "click %u", &a) == 1) {
    send_button(a, 1);
    send_button(a, 0);
  } else if (sscanf(line, "slider %u", &a) == 1) {
    uint8_t p[PANEL_LEN_SLIDER];
    p[0] = 0;
    panel_put_u16(p + 1, (uint16_t)a);
    send_frame(PANEL_MSG_SLIDER, p, sizeof p);
  } else if (!strcmp(word, "heartbeat")) {
    if (strstr(line, " off")) heartbeat_ms = 0;
    else if (strstr(line, " on")) {
      heartbeat_ms = PANEL_HEARTBEAT_MS;
      next_heartbeat = now_ms() + heartbeat_ms;
    } else send_heartbeat();
  } else if (sscanf(line, "ack %u %u", &a, &b) == 2) {
    send_ack((uint8_t)a, (uint8_t)b);
  } else if (sscanf(line, "nak %u %u %u", &a, &b, &c) == 3) {
    send_nak((uint8_t)a, (uint8_t)b, (uint8_t)c);
  } else if (!strcmp(word, "send") || !strcmp(word, "badcrc")) {
    int off = 0;
    if (sscanf(line, "%*s %x%n", &a, &off) != 1 || (n = hex_bytes(line + off, bytes, PANEL_MAX_PAYLOAD + 8)) < 0) {
      printf("err usage: %s TYPE HEX\n", word);
      return;
    }
    if (!strcmp(word, "send")) send_frame((uint8_t)a, bytes, (size_t)n);
    else send_odd(PANEL_PROTOCOL_VERSION, (uint8_t)a, bytes, (size_t)n, 1);
  } else if (!strcmp(word, "version")) {
    int off = 0;
    if (sscanf(line, "version %u %x%n", &a, &b, &off) != 2 || (n = hex_bytes(line + off, bytes, PANEL_MAX_PAYLOAD)) < 0) {
      printf("err usage: version V TYPE HEX\n");
      return;
    }
    send_odd((uint8_t)a, (uint8_t)b, bytes, (size_t)n, 0);
  } else if (!strcmp(word, "raw")) {
    if ((n = hex_bytes(line + 3, bytes, sizeof bytes)) < 0) {
      printf("err usage: raw HEX\n");
      return;
    }
    write_all(bytes, (size_t)n);
    printf("tx raw len=%d\n", n);
  } else if (!strcmp(word, "repeat")) {
    if (last_len) {
      write_all(last_wire, last_len);
      printf("tx repeat len=%u\n", (unsigned)last_len);
    }
  } else if (!strcmp(word, "stats")) {
    printf("stats frames=%u garbage=%u crc=%u partial=%u oversized=%u\n", (unsigned)rx.frames, (unsigned)rx.garbage_bytes, (unsigned)rx.crc_errors,
           (unsigned)rx.partial_frames, (unsigned)rx.oversized);
  } else if (!strcmp(word, "quit")) {
    printf("bye\n");
    exit(0);
  } else {
    printf("err unknown command: %s\n", word);
  }
}

static speed_t baud(unsigned long rate) {
  switch (rate) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return B115200;
  }
}

int main(int argc, char **argv) {
  struct termios tio;
  char line[1024];
  size_t have = 0;
  int hello = 1, i;
  if (argc < 2) {
    fprintf(stderr, "usage: %s TTY [--heartbeat MS] [--no-hello]\n", argv[0]);
    return 2;
  }
  for (i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--heartbeat") && i + 1 < argc) heartbeat_ms = atol(argv[++i]);
    else if (!strcmp(argv[i], "--no-hello")) hello = 0;
    else {
      fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  clock_gettime(CLOCK_MONOTONIC, &started);
  tty = open(argv[1], O_RDWR | O_NOCTTY | O_NONBLOCK);
  if (tty < 0) {
    printf("err cannot open %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  if (tcgetattr(tty, &tio) == 0) {
    cfmakeraw(&tio);
    cfsetispeed(&tio, baud(PANEL_BAUD_RATE));
    cfsetospeed(&tio, baud(PANEL_BAUD_RATE));
    tio.c_cflag |= CLOCAL | CREAD;
    tcsetattr(tty, TCSANOW, &tio);
  }
  panel_rx_init(&rx);
  printf("ready layout=%08lx buttons=%u leds=%u\n", (unsigned long)PANEL_LAYOUT_HASH, (unsigned)PANEL_BUTTON_COUNT, (unsigned)PANEL_LED_COUNT);
  if (hello) send_hello(PANEL_LAYOUT_HASH);
  next_heartbeat = now_ms() + heartbeat_ms;
  for (;;) {
    struct pollfd fds[2];
    int timeout = -1;
    fds[0].fd = 0;
    fds[0].events = POLLIN;
    fds[1].fd = tty;
    fds[1].events = POLLIN;
    if (heartbeat_ms > 0) {
      long long wait = next_heartbeat - now_ms();
      timeout = wait < 0 ? 0 : (int)wait;
    }
    if (poll(fds, 2, timeout) < 0) {
      if (errno == EINTR) continue;
      gone(strerror(errno));
    }
    if (heartbeat_ms > 0 && now_ms() >= next_heartbeat) {
      send_heartbeat();
      next_heartbeat = now_ms() + heartbeat_ms;
    }
    if (fds[1].revents & POLLIN) {
      uint8_t buf[256];
      ssize_t r = read(tty, buf, sizeof buf);
      if (r > 0) {
        ssize_t k;
        for (k = 0; k < r; k++) on_byte(buf[k]);
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        gone(r == 0 ? "end of file" : strerror(errno));
      }
    } else if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
      gone("hangup");
    }
    if (fds[0].revents & (POLLIN | POLLHUP)) {
      ssize_t r = read(0, line + have, sizeof line - 1 - have);
      char *nl;
      if (r <= 0) {
        printf("bye\n");
        return 0;
      }
      have += (size_t)r;
      line[have] = 0;
      while ((nl = strchr(line, '\n')) != NULL) {
        *nl = 0;
        command(line);
        memmove(line, nl + 1, have - (size_t)(nl + 1 - line) + 1);
        have -= (size_t)(nl + 1 - line);
      }
      if (have == sizeof line - 1) have = 0; /* a line too long: dropped */
    }
  }
}
