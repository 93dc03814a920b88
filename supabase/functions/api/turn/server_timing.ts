/** Where the time before the first byte went, for the Server-Timing header (and the benchmark). */
export class ServerTiming {
  #last = performance.now();
  #entries: string[] = [];
  lap(name: string, description: string) {
    const now = performance.now();
    this.#entries.push(`${name};desc="${description}";dur=${(now - this.#last).toFixed(2)}`);
    this.#last = now;
  }
  header(): string {
    return this.#entries.join(", ");
  }
}
