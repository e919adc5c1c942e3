import React, { useEffect, useState } from 'react';
import { css } from '@emotion/css';
import { GrafanaTheme2 } from '@grafana/data';
import { Alert, Badge, BadgeColor, LoadingPlaceholder, useStyles2 } from '@grafana/ui';
import { errorMessage } from '../api';
import { splitRedactions } from '../format';

/** Loads data when deps change; returns [data, error, loading, reload]. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): [T | undefined, string | undefined, boolean, () => void] {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    load()
      .then((d) => {
        if (live) {
          setData(d);
          setError(undefined);
        }
      })
      .catch((e) => {
        if (live) {
          setError(errorMessage(e));
        }
      })
      .finally(() => {
        if (live) {
          setLoading(false);
        }
      });
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return [data, error, loading, () => setTick((t) => t + 1)];
}

/**
 * Loads data once `after` (what the page shows first) is there, and again
 * whenever it changes: a slower part of a page (the agents' Content column)
 * waits for the rest instead of competing with it. Until the load for the
 * current `after` has finished, loading is true and data undefined (never
 * the answer for an earlier `after`).
 */
export function useLoadAfter<T>(after: object | undefined, load: () => Promise<T>): { data?: T; error?: string; loading: boolean } {
  const [got, setGot] = useState<{ of?: object; data?: T; error?: string }>({});
  useEffect(() => {
    if (!after) {
      return;
    }
    let live = true;
    load().then(
      (data) => live && setGot({ of: after, data }),
      (e) => live && setGot({ of: after, error: errorMessage(e) })
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [after]);
  if (!after || got.of !== after) {
    return { loading: true };
  }
  return { data: got.data, error: got.error, loading: false };
}

export function Loading({ error, loading, children }: { error?: string; loading: boolean; children: () => React.ReactNode }) {
  if (error) {
    return (
      <Alert title="Cannot load data" severity="error">
        {error}
      </Alert>
    );
  }
  if (loading) {
    return <LoadingPlaceholder text="Loading..." />;
  }
  return <>{children()}</>;
}

const sevColor: Record<string, BadgeColor> = { critical: 'red', high: 'red', medium: 'orange', low: 'blue', info: 'blue' };
const statusColor: Record<string, BadgeColor> = { open: 'red', acknowledged: 'orange', resolved: 'green', suppressed: 'purple' };

export function Severity({ value }: { value: string }) {
  return <Badge text={value} color={sevColor[value] ?? 'blue'} data-testid={`severity-${value}`} />;
}

export function Status({ value }: { value: string }) {
  return <Badge text={value} color={statusColor[value] ?? 'blue'} data-testid="incident-status" />;
}

export function Outcome({ value }: { value: string }) {
  const c: BadgeColor = value === 'ok' ? 'green' : value === 'denied' ? 'purple' : 'red';
  return <Badge text={value} color={c} />;
}

/** Text as stored, with redaction markers highlighted. */
export function Redacted({ text }: { text: string }) {
  const s = useStyles2(getStyles);
  return (
    <>
      {splitRedactions(text).map((p, i) =>
        p.redacted ? (
          <mark key={i} className={s.redacted} data-testid="redaction" title="Redacted by the collector">
            {p.text}
          </mark>
        ) : (
          <span key={i}>{p.text}</span>
        )
      )}
    </>
  );
}

export function Section({ title, children, testId }: { title: string; children: React.ReactNode; testId?: string }) {
  const s = useStyles2(getStyles);
  return (
    <section className={s.section} data-testid={testId}>
      <h3 className={s.h3}>{title}</h3>
      {children}
    </section>
  );
}

export function useTableStyles() {
  return useStyles2(getStyles);
}

export const getStyles = (theme: GrafanaTheme2) => ({
  redacted: css`
    background: ${theme.colors.warning.transparent};
    color: ${theme.colors.warning.text};
    border: 1px dashed ${theme.colors.warning.border};
    border-radius: 2px;
    padding: 0 2px;
  `,
  bad: css`
    color: ${theme.colors.error.text};
  `,
  warn: css`
    color: ${theme.colors.warning.text};
  `,
  section: css`
    margin-top: ${theme.spacing(3)};
  `,
  h3: css`
    margin-bottom: ${theme.spacing(1)};
  `,
  row: css`
    display: flex;
    flex-wrap: wrap;
    gap: ${theme.spacing(1.5)};
  `,
  table: css`
    width: 100%;
    border-collapse: collapse;
    th,
    td {
      text-align: left;
      padding: ${theme.spacing(0.5, 1)};
      border-bottom: 1px solid ${theme.colors.border.weak};
      vertical-align: top;
    }
    th {
      color: ${theme.colors.text.secondary};
      font-weight: ${theme.typography.fontWeightMedium};
    }
    tr.clickable {
      cursor: pointer;
    }
    tr.clickable:hover,
    tr.selected {
      background: ${theme.colors.action.hover};
    }
  `,
  num: css`
    text-align: right !important;
    font-variant-numeric: tabular-nums;
  `,
  pre: css`
    white-space: pre-wrap;
    word-break: break-all;
    font-family: ${theme.typography.fontFamilyMonospace};
    font-size: ${theme.typography.bodySmall.fontSize};
    margin: 0;
    background: transparent;
    border: none;
    padding: 0;
  `,
  two: css`
    display: grid;
    grid-template-columns: 1fr 1fr;
    gap: ${theme.spacing(2)};
  `,
  added: css`
    background: ${theme.colors.success.transparent};
  `,
  removed: css`
    background: ${theme.colors.error.transparent};
  `,
  muted: css`
    color: ${theme.colors.text.secondary};
  `,
  toolbar: css`
    display: flex;
    gap: ${theme.spacing(1)};
    align-items: center;
    flex-wrap: wrap;
    margin-bottom: ${theme.spacing(2)};
  `,
});
