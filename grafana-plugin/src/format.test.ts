import { diffLines, fmtPct, fmtTime, pretty, splitRedactions } from './format';

describe('splitRedactions', () => {
  it('separates redaction markers from plain text', () => {
    const parts = splitRedactions('{"key":"[REDACTED:aws_access_key:1a2b3c4d]","x":"[REDACTED:private_key:9f8e7d6c]"}');
    expect(parts.filter((p) => p.redacted).map((p) => p.text)).toEqual([
      '[REDACTED:aws_access_key:1a2b3c4d]',
      '[REDACTED:private_key:9f8e7d6c]',
    ]);
    expect(parts.map((p) => p.text).join('')).toBe('{"key":"[REDACTED:aws_access_key:1a2b3c4d]","x":"[REDACTED:private_key:9f8e7d6c]"}');
  });
  it('returns text without markers unchanged', () => {
    expect(splitRedactions('plain')).toEqual([{ text: 'plain', redacted: false }]);
    expect(splitRedactions('')).toEqual([]);
  });
});

describe('diffLines', () => {
  it('marks lines that exist on one side only', () => {
    const d = diffLines('a\nb\nc', 'a\nB\nc\nd');
    expect(d.left).toEqual([
      ['a', false],
      ['b', true],
      ['c', false],
    ]);
    expect(d.right.filter(([, changed]) => changed).map(([l]) => l)).toEqual(['B', 'd']);
  });
});

describe('formatting', () => {
  it('formats rates, times and JSON', () => {
    expect(fmtPct(0.125)).toBe('12.5%');
    expect(fmtPct(NaN)).toBe('-');
    expect(fmtTime('2026-01-02T03:04:05Z')).toBe('2026-01-02 03:04:05Z');
    expect(fmtTime('1970-01-01T00:00:00Z')).toBe('-');
    expect(pretty('{"a":1}')).toBe('{\n  "a": 1\n}');
    expect(pretty('not json')).toBe('not json');
  });
});
