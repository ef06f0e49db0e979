// MQTT telemetry and Prometheus metrics (docs/telemetry.md).
import os from 'node:os';
import type { SonomicsConfig } from '../../core/config.js';
import { TelemetryPublisher, type TelemetrySources } from './publisher.js';

export { TelemetryPublisher, TelemetryConfigError, resolvePassword, PASSWORD_ENV, USERNAME_ENV } from './publisher.js';
export type { TelemetryOptions, TelemetrySources, TelemetryStats, SourceInfo } from './publisher.js';
export { Spool, SpoolLockedError, SPOOL_FORMAT } from './spool.js';
export type { SpoolOptions, SpoolEntry, SpoolStats } from './spool.js';
export { createMetrics, serveMetrics } from './metrics.js';
export type { MetricsSources, TelemetryMetrics } from './metrics.js';
export * from './schema.js';

/** The config file's `telemetry` section (core/config.ts), defaults filled in. */
export type TelemetryConfig = SonomicsConfig['telemetry'];

/** The host name as a device id (one topic level). */
export function defaultDeviceId(): string {
  const id = os.hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return id || 'sonomics';
}

/** A publisher for the config's telemetry section (not started), or undefined when no broker is set. */
export function telemetryFromConfig(c: TelemetryConfig, sources?: TelemetrySources): TelemetryPublisher | undefined {
  if (!c.url) return undefined;
  return new TelemetryPublisher({
    url: c.url, deviceId: c.deviceId ?? defaultDeviceId(), prefix: c.prefix, intervalMs: c.intervalMs, qos: 1,
    tls: c.tls, username: c.username, passwordFile: c.passwordFile, spool: c.spool,
    reconnectMs: c.reconnectMs, keepaliveS: c.keepaliveS, sources,
  });
}
