// A QR code drawn as SVG rectangles (one per run of dark modules), black on white in both
// themes so phone cameras read it.
import { useMemo } from 'preact/hooks';
import { encode } from 'uqr';

interface Run {
  x: number;
  y: number;
  width: number;
}

export function QrCode({ text, label }: { text: string; label: string }) {
  const { size, runs } = useMemo(() => {
    const qr = encode(text, { ecc: 'M', border: 2 });
    const found: Run[] = [];
    qr.data.forEach((row, y) => {
      let start = -1;
      row.forEach((dark, x) => {
        if (dark && start < 0) start = x;
        if (!dark && start >= 0) {
          found.push({ x: start, y, width: x - start });
          start = -1;
        }
      });
      if (start >= 0) found.push({ x: start, y, width: row.length - start });
    });
    return { size: qr.size, runs: found };
  }, [text]);
  return (
    <svg class="qr" role="img" aria-label={label} viewBox={`0 0 ${size} ${size}`} shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      {runs.map((r) => (
        <rect key={`${r.x},${r.y}`} x={r.x} y={r.y} width={r.width} height={1} fill="#000" />
      ))}
    </svg>
  );
}
