// Frame operations the page scenes run as custom transformations (Scenes
// runs those without Grafana's transformer registry); see drilldown.ts.
import type { DataFrame, Field } from '@grafana/data';

/** Keeps the frames named `name` (a query answering several frames, one per panel). */
export function pickFrames(frames: DataFrame[], name: string): DataFrame[] {
  return frames.filter((f) => f.name === name);
}

/** Keeps the rows whose `field` is one of `values` (frames without the field are dropped). */
export function filterRows(frames: DataFrame[], field: string, values: string[]): DataFrame[] {
  const out: DataFrame[] = [];
  for (const f of frames) {
    const key = f.fields.find((x) => x.name === field);
    if (!key) {
      continue;
    }
    const keep: number[] = [];
    for (let i = 0; i < f.length; i++) {
      if (values.includes(String(key.values[i]))) {
        keep.push(i);
      }
    }
    out.push({
      ...f,
      length: keep.length,
      fields: f.fields.map((x): Field => ({ ...x, values: keep.map((i) => x.values[i]), state: undefined })),
    });
  }
  return out;
}

/**
 * The blast radius requests table's title: the answer lists the newest
 * calls only, and the blast_calls frame's meta.custom.more_calls says how
 * many more there are ("Requests (newest 100 of 2,345)").
 */
export function callsTitle(frames: DataFrame[]): string {
  const calls = frames.find((f) => f.name === 'blast_calls');
  if (!calls) {
    return 'Requests (newest first)';
  }
  const more = Number(calls.meta?.custom?.more_calls ?? 0);
  return `Requests (newest ${calls.length.toLocaleString('en-US')}${more > 0 ? ` of ${(calls.length + more).toLocaleString('en-US')}` : ''})`;
}
