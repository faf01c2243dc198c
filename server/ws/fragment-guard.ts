// Counts WebSocket frames per message by reading frame headers off the raw socket (RFC 6455 §5.2),
// because `ws` caps a message's bytes but not how many fragments it arrives in.

export class FragmentGuard {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private fragments = 0;
  private tripped = false;

  constructor(
    private readonly maxFragments: number,
    private readonly onViolation: () => void,
  ) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.tripped) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= n;
        offset += n;
        continue;
      }
      const need = this.headerLength();
      const take = Math.min(need - this.header.length, chunk.length - offset);
      this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + take)]);
      offset += take;
      if (this.header.length < need) continue;
      if (need === 2 && this.headerLength() > 2) continue; // extended length or mask still to come
      this.onFrame();
    }
  }

  /** Bytes of the current frame's header, as far as can be told from what has arrived. */
  private headerLength(): number {
    if (this.header.length < 2) return 2;
    const b1 = this.header[1]!;
    const len7 = b1 & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
  }

  private onFrame(): void {
    const b0 = this.header[0]!;
    const b1 = this.header[1]!;
    const len7 = b1 & 0x7f;
    let length = len7;
    if (len7 === 126) length = this.header.readUInt16BE(2);
    else if (len7 === 127) length = Number(this.header.readBigUInt64BE(2));
    this.header = Buffer.alloc(0);
    this.remaining = length;
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (opcode >= 0x8) return; // control frames may interleave and never fragment
    this.fragments = opcode === 0 ? this.fragments + 1 : 1;
    if (this.fragments > this.maxFragments) {
      this.tripped = true;
      this.onViolation();
      return;
    }
    if (fin) this.fragments = 0;
  }
}
