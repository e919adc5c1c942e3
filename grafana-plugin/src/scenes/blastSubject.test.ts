import { blastKindOf, blastQuery, blastSubject } from './blastSubject';

describe('blast radius subject', () => {
  it('finds the kind from the URL fields', () => {
    expect(blastKindOf({ fingerprint: '9f8e7d6c' })).toBe('fingerprint');
    expect(blastKindOf({ server: 'fs', tool: 'read' })).toBe('tool');
    expect(blastKindOf({ incident: 'inc-1' })).toBe('incident');
    expect(blastKindOf({})).toBe('tool');
  });
  it('keeps only the kind\'s fields, trimmed', () => {
    expect(blastSubject('session', { session: ' s1 ', fingerprint: 'ab' })).toEqual({ session: 's1' });
    expect(blastSubject('tool', { server: 'fs', tool: 'read', definition_hash: ' ' })).toEqual({ server: 'fs', tool: 'read' });
  });
  it('names the subject in server/tool so the shared variables do not override it', () => {
    const q = blastQuery({ fingerprint: '9f8e7d6c' });
    expect(q).toMatchObject({ queryType: 'blast_radius', fingerprint: '9f8e7d6c', server: '', tool: '' });
    expect(blastQuery({ server: 'fs', tool: 'read' })).toMatchObject({ server: 'fs', tool: 'read', fingerprint: '' });
  });
});
