// A latest-value slot between two pipeline stages. The producer never waits: putting a value
// while the previous one is still unconsumed replaces it and counts a drop. The consumer
// awaits the next value. This is how a slow stage sheds load instead of queueing frames.
export class LatestSlot<T> {
  private value: T | undefined;
  private has = false;
  private waiter: ((v: T | undefined) => void) | undefined;
  private closed = false;
  /** Values replaced before anyone took them. */
  dropped = 0;
  /** Values handed to the consumer. */
  taken = 0;

  constructor(readonly name: string, private readonly onDrop?: (v: T) => void) {}

  put(v: T): void {
    if (this.closed) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      this.taken++;
      w(v);
      return;
    }
    if (this.has) {
      this.dropped++;
      if (this.onDrop) this.onDrop(this.value as T);
    }
    this.value = v;
    this.has = true;
  }

  /** Resolves with the next value, or undefined once the slot is closed. */
  take(): Promise<T | undefined> {
    if (this.has) {
      const v = this.value as T;
      this.value = undefined;
      this.has = false;
      this.taken++;
      return Promise.resolve(v);
    }
    if (this.closed) return Promise.resolve(undefined);
    if (this.waiter) throw new Error(`slot ${this.name}: only one consumer may wait`);
    return new Promise((resolve) => { this.waiter = resolve; });
  }

  close(): void {
    this.closed = true;
    if (this.waiter) { const w = this.waiter; this.waiter = undefined; w(undefined); }
  }
}
