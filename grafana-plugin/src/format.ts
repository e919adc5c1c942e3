export function fmtNum(n: number | undefined): string {
  if (n === undefined || n === null) {
    return '-';
  }
  return n.toLocaleString('en-US');
}

export function fmtPct(r: number | undefined): string {
  if (r === undefined || !isFinite(r)) {
    return '-';
  }
  return `${(r * 100).toFixed(1)}%`;
}

export function fmtTime(s: string | undefined): string {
  if (!s) {
    return '-';
  }
  const d = new Date(s);
  if (isNaN(d.getTime()) || d.getTime() <= 0) {
    return '-';
  }
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export const REDACTION = /\[REDACTED:[^\]]*\]/g;

/** Splits text into plain and redaction-marker parts. */
export function splitRedactions(text: string): Array<{ text: string; redacted: boolean }> {
  const out: Array<{ text: string; redacted: boolean }> = [];
  let last = 0;
  for (const m of text.matchAll(REDACTION)) {
    const i = m.index ?? 0;
    if (i > last) {
      out.push({ text: text.slice(last, i), redacted: false });
    }
    out.push({ text: m[0], redacted: true });
    last = i + m[0].length;
  }
  if (last < text.length) {
    out.push({ text: text.slice(last), redacted: false });
  }
  return out;
}

/** Line diff for the side-by-side view: marks lines absent from the other side. */
export function diffLines(a: string, b: string): { left: Array<[string, boolean]>; right: Array<[string, boolean]> } {
  const la = a.split('\n');
  const lb = b.split('\n');
  const sa = new Set(la);
  const sb = new Set(lb);
  return { left: la.map((l) => [l, !sb.has(l)]), right: lb.map((l) => [l, !sa.has(l)]) };
}

/** Pretty-prints JSON text, leaving non-JSON as is. */
export function pretty(s: string): string {
  if (!s) {
    return '';
  }
  try {
    return JSON.stringify(JSON.parse(s), null, 2);
  } catch {
    return s;
  }
}
