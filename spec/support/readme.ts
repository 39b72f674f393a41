// The README's code (and the docs/ pages'), as specs run it: a section by its heading, and the
// fenced blocks in it. The specs take the code from the page itself, so the page cannot say one
// thing while the specs check another.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export interface CodeBlock {
  /** The fence's info string: `js`, `ts`, `sh`… */
  lang: string;
  code: string;
}

const ROOT = path.join(__dirname, '..', '..');

/**
 * The text under `heading` (`## Quick start`) of `page` (a path from the repository's root), up to
 * the next heading of its level or above.
 */
export function readmeSection(heading: string, page = 'README.md'): string {
  const level = /^#+/.exec(heading)?.[0].length;
  assert.ok(level, `${heading} is a Markdown heading`);
  const lines = readFileSync(path.join(ROOT, page), 'utf8').split('\n');
  const start = lines.indexOf(heading);
  assert.ok(start >= 0, `${page} has a "${heading}" section`);
  let end = start + 1;
  let fenced = false;
  for (; end < lines.length; end++) {
    const line = lines[end] ?? '';
    if (line.startsWith('```')) fenced = !fenced;
    const next = /^(#+) /.exec(line);
    if (!fenced && next?.[1] && next[1].length <= level) break;
  }
  return lines.slice(start + 1, end).join('\n');
}

/** The fenced code blocks of `markdown`, in order (indented ones, in list items, included). */
export function codeBlocks(markdown: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const fence = /^( *)```(\w*)\n([\s\S]*?)^\1```$/gm;
  for (const [, indent = '', lang = '', body = ''] of markdown.matchAll(fence)) {
    const code = body
      .split('\n')
      .map((line) => line.slice(indent.length))
      .join('\n');
    blocks.push({ lang, code });
  }
  return blocks;
}

/** The one block of `blocks` that `test` picks; fails when none or several do. */
export function theBlock(
  blocks: readonly CodeBlock[],
  what: string,
  test: (block: CodeBlock) => boolean,
): CodeBlock {
  const found = blocks.filter(test);
  assert.equal(found.length, 1, `one block in the section is ${what}`);
  return found[0] as CodeBlock;
}
