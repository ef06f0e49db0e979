// What the file-backed sources (a DICOM cine, a folder of frames) share: start and stop by
// generation (stop() or a restart abandons the running play loop at its next await), pacing at
// the source's rate or as fast as frames decode, and one 'error' event for a failure (a warning
// when nobody listens), after which the process carries on.
import { EventEmitter } from 'node:events';

export abstract class FileSequenceSource extends EventEmitter {
  private gen = 0;
  protected running = false;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  /** Plays the frames from the first; returns when done (having emitted 'end') or abandoned. */
  protected abstract play(gen: number): Promise<void>;
  /** An Error for a non-Error failure, named for this source. */
  protected abstract wrapError(e: unknown): Error;

  /** Starts delivering from the first frame; failures arrive as 'error' events, never as throws. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const gen = ++this.gen;
    void this.guarded(gen);
  }

  stop(): void {
    this.gen++;
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Is the play loop that got `gen` still the current one? */
  protected current(gen: number): boolean {
    return gen === this.gen;
  }

  /**
   * Realtime: waits until `dueAt` (performance.now() time). Fast: still yields to the event loop
   * between frames, so a long input never holds it (some decoders are synchronous).
   */
  protected async pace(realtime: boolean, dueAt: number): Promise<void> {
    if (realtime) await this.sleep(dueAt - performance.now());
    else await new Promise((r) => setImmediate(r));
  }

  protected finish(): void {
    this.running = false;
    this.emit('end');
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(() => { this.timer = undefined; this.wake = undefined; resolve(); }, Math.max(0, ms));
    });
  }

  private async guarded(gen: number): Promise<void> {
    try {
      await this.play(gen);
    } catch (e) {
      if (gen !== this.gen) return;
      this.running = false;
      const err = e instanceof Error ? e : this.wrapError(e);
      // An 'error' event nobody listens to would throw; report it as a warning instead.
      if (this.listenerCount('error') > 0) this.emit('error', err);
      else process.emitWarning(err);
    }
  }
}
