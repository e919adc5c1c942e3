import { FieldType, toDataFrame } from '@grafana/data';
import { callsTitle, filterRows, pickFrames } from './frames';

const incidents = toDataFrame({
  name: 'incidents',
  fields: [
    { name: 'incident_id', type: FieldType.string, values: ['a', 'b', 'c'] },
    { name: 'severity', type: FieldType.string, values: ['high', 'low', 'high'] },
  ],
});
const other = toDataFrame({ name: 'other', fields: [{ name: 'x', type: FieldType.number, values: [1] }] });

describe('frame helpers', () => {
  it('picks frames by name', () => {
    expect(pickFrames([incidents, other], 'other')).toEqual([other]);
    expect(pickFrames([incidents, other], 'none')).toEqual([]);
  });
  it('filters rows by a field value, keeping every column aligned', () => {
    const [f] = filterRows([incidents, other], 'severity', ['high']);
    expect(f.length).toBe(2);
    expect(f.fields[0].values).toEqual(['a', 'c']);
    expect(f.fields[1].values).toEqual(['high', 'high']);
    expect(filterRows([incidents], 'severity', ['critical'])[0].length).toBe(0);
  });
  it('titles the blast radius requests: newest N, of M when more calls touched the subject', () => {
    const calls = (more?: number) =>
      toDataFrame({ name: 'blast_calls', meta: more === undefined ? undefined : { custom: { more_calls: more } }, fields: [{ name: 'event_id', type: FieldType.string, values: ['e1', 'e2'] }] });
    expect(callsTitle([other, calls(1998)])).toBe('Requests (newest 2 of 2,000)');
    expect(callsTitle([calls(0)])).toBe('Requests (newest 2)');
    expect(callsTitle([calls()])).toBe('Requests (newest 2)');
    expect(callsTitle([other])).toBe('Requests (newest first)');
  });
});
