// Results: rows with medians and per-round ratios, targets, the printed table, the README section.

/** A table column: the variants a row compares. */
export type Column = 'stock' | 'recipe' | 'package';
const COLUMNS: readonly Column[] = ['stock', 'recipe', 'package'];

/** A target of the package against a same-run baseline (ratio), or an absolute bound (value). */
export interface Target {
  op: '<=' | '>=' | '<';
  value: number;
  /** `ratio`: the row's ratio to `baseline`; `package`: the package's own figure. */
  of: 'ratio' | 'package';
}

export interface Row {
  section: string;
  figure: string;
  values: Partial<Record<Column, number>>;
  /** Median, over rounds, of package ÷ baseline computed per round. */
  ratio?: number;
  baseline?: Column;
  /** What the ratio is to, when not a column (e.g. the package without a subscriber). */
  baselineLabel?: string;
  target?: Target;
  status?: 'PASS' | 'MISS';
  /** Why a row has no figures (skipped), or what to keep in mind. */
  note?: string;
}

export interface Meta {
  date: string;
  cpu: string;
  cores: number;
  node: string;
  packageVersion: string;
  versions: Record<string, string>;
  quick: boolean;
  /** The figures `--only` kept, when it was given. */
  only: string[] | null;
  /** What the servers ran of this package: its tsc build, or lib/ through tsx. */
  build: string;
  redis: boolean;
  rounds: number;
  durationS: number;
  loadAverage: { start: number; end: number };
}

export interface Results {
  meta: Meta;
  rows: Row[];
  /** Every round's raw figure, by row figure and variant, for whoever doubts a median. */
  samples: Record<string, Record<string, number[]>>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Nearest-rank percentile, `p` in 0–100. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] ?? NaN;
}

/** Median of `a[i] / b[i]`: each round's ratio, so a busy round weighs on both sides alike. */
export function medianRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((value, i) => value / (b[i] ?? NaN)));
}

export function judge(row: Row): Row {
  const { target } = row;
  if (!target) return row;
  const figure = target.of === 'ratio' ? row.ratio : row.values.package;
  if (figure === undefined || Number.isNaN(figure)) return row;
  const met =
    target.op === '<='
      ? figure <= target.value
      : target.op === '>='
        ? figure >= target.value
        : figure < target.value;
  return { ...row, status: met ? 'PASS' : 'MISS' };
}

export function formatNumber(n: number | undefined): string {
  if (n === undefined || Number.isNaN(n)) return '';
  const abs = Math.abs(n);
  if (abs >= 10_000) return Math.round(n).toLocaleString('en-US');
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function ratioText(row: Row): string {
  if (row.ratio === undefined || Number.isNaN(row.ratio)) return '';
  return `${row.ratio.toFixed(2)}× ${row.baselineLabel ?? row.baseline ?? ''}`.trim();
}

function targetText(row: Row): string {
  const { target } = row;
  if (!target) return '';
  const op = { '<=': '≤', '>=': '≥', '<': '<' }[target.op];
  return target.of === 'ratio'
    ? `${op} ${target.value.toFixed(2)}× ${row.baseline ?? ''}`.trim()
    : `${op} ${formatNumber(target.value)}`;
}

const HEADERS = ['figure', 'stock', 'recipe', 'package', 'package ÷ baseline', 'target', 'result'];

function cells(row: Row): string[] {
  if (row.note !== undefined && Object.keys(row.values).length === 0) {
    return [row.figure, '', '', '', '', targetText(row), `skipped: ${row.note}`];
  }
  return [
    row.figure,
    ...COLUMNS.map((column) => formatNumber(row.values[column])),
    ratioText(row),
    targetText(row),
    row.status ?? '',
  ];
}

function sections(rows: readonly Row[]): [string, Row[]][] {
  const bySection = new Map<string, Row[]>();
  for (const row of rows) {
    const list = bySection.get(row.section) ?? [];
    list.push(row);
    bySection.set(row.section, list);
  }
  // Numbered sections, in number order, whatever order they were measured in.
  return [...bySection].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }));
}

/** Rows with figures and a note: what to keep in mind when reading them. */
function notesOf(rows: readonly Row[]): Row[] {
  return rows.filter((r) => r.note !== undefined && Object.keys(r.values).length > 0);
}

/** The plain-text table printed at the end of a run. */
export function renderTable(results: Results): string {
  const table = [HEADERS, ...results.rows.map(cells)];
  const widths = HEADERS.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((cell, i) =>
        i === 0 || i >= 5 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  const out = [line(HEADERS), widths.map((w) => '─'.repeat(w)).join('  ')];
  for (const [section, rows] of sections(results.rows)) {
    out.push(section);
    for (const row of rows) out.push(line(cells(row)));
  }
  for (const row of notesOf(results.rows)) out.push(`note (${row.figure}): ${row.note ?? ''}`);
  return out.join('\n');
}

/** One line saying where and when the figures were measured. */
export function describeRun(meta: Meta): string {
  const versions = Object.entries(meta.versions)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ');
  return (
    `${meta.cpu} (${meta.cores} cores), Node ${meta.node}, socket.io-session-auth ` +
    `${meta.packageVersion} (${meta.build}), ${versions}; ${meta.date.slice(0, 10)}; medians of ${meta.rounds} ` +
    `interleaved rounds${meta.quick ? ' (quick mode)' : ''}; load average ` +
    `${meta.loadAverage.start.toFixed(2)} → ${meta.loadAverage.end.toFixed(2)}`
  );
}

/** The Performance table (docs/performance.md), in Markdown. */
export function renderMarkdown(results: Results): string {
  const escape = (cell: string): string => cell.replace(/\|/g, '\\|');
  const row = (r: string[]): string => `| ${r.map(escape).join(' | ')} |`;
  const out = [
    `Measured by \`npm run bench\`: ${describeRun(results.meta)}.`,
    '',
    row(HEADERS),
    row(HEADERS.map((_, i) => (i === 0 || i >= 5 ? '---' : '---:'))),
  ];
  for (const [section, rows] of sections(results.rows)) {
    out.push(row([`**${section}**`, '', '', '', '', '', '']));
    for (const r of rows) out.push(row(cells(r)));
  }
  out.push('');
  for (const r of notesOf(results.rows)) out.push(`- ${r.figure}: ${r.note ?? ''}`);
  return out.join('\n');
}

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

/** `text` with what lies between the bench markers replaced by `section`. */
export function replaceSection(text: string, section: string): string {
  const start = text.indexOf(README_START);
  const end = text.indexOf(README_END);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(
      `docs/performance.md needs the markers ${README_START} and ${README_END}, in that order`,
    );
  }
  return `${text.slice(0, start + README_START.length)}\n${section}\n${text.slice(end)}`;
}
