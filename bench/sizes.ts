// npx tsx bench/sizes.ts [folder]   (default lib)
//
// Lists every function over 60 lines and every file over 300 lines under lib/ (the test kit
// included), the limits of the package's style (issue 19); `npm run lint` runs it; exits 1
// when it lists anything. Lines are counted from a function's first line to its last, comments
// inside included; a file's, as `wc -l` counts them.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

const MAX_FUNCTION_LINES = 60;
const MAX_FILE_LINES = 300;
const root = process.argv[2] ?? 'lib';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.m?ts$/.test(name) ? [path] : [];
  });
}

function oversized(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos: number): number => source.getLineAndCharacterOfPosition(pos).line + 1;
  const found: string[] = [];
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > MAX_FILE_LINES) found.push(`${file}: ${lines} lines`);
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const length = lineOf(node.getEnd()) - lineOf(node.getStart()) + 1;
      const name = (node as ts.FunctionDeclaration).name?.getText(source) ?? '(anonymous)';
      if (length > MAX_FUNCTION_LINES) {
        found.push(`${file}:${lineOf(node.getStart())}: ${name}, ${length} lines`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

const found = sourceFiles(root).flatMap(oversized);
for (const line of found) console.log(line);
process.exitCode = found.length > 0 ? 1 : 0;
