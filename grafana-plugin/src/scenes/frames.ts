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
