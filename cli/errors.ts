// A bad command line: reported as `sonomics: <message>` with exit code 2 (runtime failures exit 1).
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
