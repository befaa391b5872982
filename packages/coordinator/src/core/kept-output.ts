/** Output kept per stream per worker for the collected result; the rest is dropped with a marker so a chatty task cannot exhaust memory. */
export const MAX_KEPT_OUTPUT_BYTES = 8 * 1024 * 1024;

const TRUNCATED = Buffer.from('\n[credfwd: output truncated]\n');

/** One stream's output, kept as the bytes that arrived, up to {@link MAX_KEPT_OUTPUT_BYTES}. */
export class KeptOutput {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #truncated = false;

  append(chunk: Buffer): void {
    if (this.#truncated) return;
    const room = MAX_KEPT_OUTPUT_BYTES - this.#size;
    if (chunk.length <= room) {
      this.#chunks.push(chunk);
      this.#size += chunk.length;
      return;
    }
    // Cut before a UTF-8 continuation byte, so text stays text up to the marker.
    let end = room;
    while (end > 0 && end > room - 3 && (chunk[end]! & 0xc0) === 0x80) end -= 1;
    this.#chunks.push(chunk.subarray(0, end), TRUNCATED);
    this.#truncated = true;
  }

  /** Everything kept, with the truncation marker when some was dropped. */
  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}
