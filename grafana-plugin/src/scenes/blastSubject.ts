// What a blast radius starts from and its URL parameters (no Scenes
// imports: jest tests it).
import type { McpQuery } from '../datasource/types';

export const BLAST_KINDS = [
  { value: 'tool', label: 'Tool', fields: ['server', 'tool', 'definition_hash'] },
  { value: 'fingerprint', label: 'Redacted secret', fields: ['fingerprint'] },
  { value: 'session', label: 'Session', fields: ['session'] },
  { value: 'incident', label: 'Incident', fields: ['incident'] },
] as const;

export type BlastKind = (typeof BLAST_KINDS)[number]['value'];
export const BLAST_FIELDS = ['server', 'tool', 'definition_hash', 'fingerprint', 'session', 'incident'] as const;
export type BlastField = (typeof BLAST_FIELDS)[number];
export type Subject = Partial<Record<BlastField, string>>;

/** The kind a subject (from the URL) is; a tool when none is set. */
export function blastKindOf(subject: Subject): BlastKind {
  return BLAST_KINDS.find((k) => k.fields.some((f) => subject[f]))?.value ?? 'tool';
}

/** The subject the form names: only the kind's fields, trimmed, empty ones left out. */
export function blastSubject(kind: BlastKind, draft: Subject): Subject {
  const out: Subject = {};
  for (const f of BLAST_KINDS.find((k) => k.value === kind)!.fields) {
    const v = draft[f]?.trim();
    if (v) {
      out[f] = v;
    }
  }
  return out;
}

/**
 * The blast_radius query of a subject: server and tool name the subject
 * (so the shared $server/$tool variables do not apply); tenant and agent
 * still narrow it.
 */
export function blastQuery(subject: Subject): Omit<McpQuery, 'refId'> {
  return {
    queryType: 'blast_radius',
    server: subject.server ?? '',
    tool: subject.tool ?? '',
    definition_hash: subject.definition_hash ?? '',
    fingerprint: subject.fingerprint ?? '',
    session: subject.session ?? '',
    incident: subject.incident ?? '',
  };
}
