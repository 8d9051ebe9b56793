#!/usr/bin/env node
// Measures the source tree's structure from its imports, so a restructuring can show before and
// after with one command: `node scripts/structure.mjs [--json] [--longest N]`.
//
// - layering: folder-level import arrows that run against the declared order of layers (a lower
//   layer importing a higher one), with the file-level imports behind each;
// - cycles: groups of files that import each other (strongly connected components, type-only
//   imports included: they still tie the files' meaning together);
// - the longest functions (declarations, methods, and arrow/function expressions bound to a name);
// - lines per cloud-backend folder in src/store/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');

// Higher runs above lower; an import may point to the same or a lower rank only. Folders on one
// rank are peers that must not import each other either (listed in PEERS_APART).
const RANK = {
  cli: 10,
  commands: 9,
  server: 8,
  ui: 8,
  sync: 7,
  repo: 6,
  workers: 5,
  pipeline: 5,
  objects: 4,
  chunking: 3,
  crypto: 3,
  compression: 3,
  agent: 3,
  store: 2,
  util: 1,
  errors: 0,
};
const PEERS_APART = [['chunking', 'crypto', 'compression']];

function listFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listFiles(full));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) out.push(full);
  }
  return out.sort();
}

const rel = (file) => path.relative(root, file);
const layerOf = (file) => path.relative(src, file).split(path.sep)[0];

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  for (const candidate of [
    base.replace(/\.js$/, '.ts'),
    `${base}.ts`,
    path.join(base, 'index.ts'),
  ]) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function parse(file) {
  const text = fs.readFileSync(file, 'utf8');
  return ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
}

function importsOf(sourceFile) {
  const specs = [];
  const visit = (node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      specs.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      specs.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return specs;
}

function functionName(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  if (node.name && ts.isStringLiteral(node.name)) return node.name.text;
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name))
    return parent.name.text;
  if (parent && ts.isPropertyAssignment(parent) && ts.isIdentifier(parent.name))
    return parent.name.text;
  if (parent && ts.isPropertyDeclaration(parent) && ts.isIdentifier(parent.name))
    return parent.name.text;
  return undefined;
}

function functionsOf(sourceFile) {
  const found = [];
  const visit = (node) => {
    const isFunction =
      ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) ||
      ts.isSetAccessorDeclaration(node) ||
      ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node);
    if (isFunction && node.body) {
      const name = ts.isConstructorDeclaration(node) ? 'constructor' : functionName(node);
      if (name) {
        const start = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile)).line + 1;
        const end = sourceFile.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
        found.push({ file: rel(sourceFile.fileName), name, start, lines: end - start + 1 });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return found;
}

/** Tarjan's strongly connected components; returns those with more than one file. */
function cyclesOf(graph) {
  let index = 0;
  const indices = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const result = [];
  const connect = (v) => {
    indices.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), indices.get(w)));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component = [];
      let w;
      do {
        w = stack.pop();
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) result.push(component.map(rel).sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) connect(v);
  return result;
}

function againstLayering(fromLayer, toLayer) {
  if (fromLayer === toLayer) return false;
  const from = RANK[fromLayer];
  const to = RANK[toLayer];
  if (from === undefined || to === undefined) return true;
  if (to > from) return true;
  return PEERS_APART.some((group) => group.includes(fromLayer) && group.includes(toLayer));
}

function countLines(dir) {
  if (!fs.existsSync(dir)) return 0;
  return listFiles(dir).reduce(
    (sum, file) => sum + fs.readFileSync(file, 'utf8').split('\n').length - 1,
    0,
  );
}

function measure() {
  const files = listFiles(src);
  const graph = new Map();
  const backEdges = new Map();
  const functions = [];
  const unranked = new Set();
  for (const file of files) {
    const sourceFile = parse(file);
    functions.push(...functionsOf(sourceFile));
    const targets = new Set();
    for (const spec of importsOf(sourceFile)) {
      const target = resolveImport(file, spec);
      if (!target || !target.startsWith(src)) continue;
      targets.add(target);
      const [fromLayer, toLayer] = [layerOf(file), layerOf(target)];
      for (const layer of [fromLayer, toLayer]) if (RANK[layer] === undefined) unranked.add(layer);
      if (againstLayering(fromLayer, toLayer)) {
        const key = `${fromLayer} → ${toLayer}`;
        if (!backEdges.has(key)) backEdges.set(key, new Set());
        backEdges.get(key).add(`${rel(file)} → ${rel(target)}`);
      }
    }
    graph.set(file, targets);
  }
  functions.sort((a, b) => b.lines - a.lines);
  const storeLines = Object.fromEntries(
    ['s3', 'azure', 'gcs', 'http'].map((name) => [
      `src/store/${name}`,
      countLines(path.join(src, 'store', name)),
    ]),
  );
  return {
    files: files.length,
    lines: files.reduce((sum, f) => sum + fs.readFileSync(f, 'utf8').split('\n').length - 1, 0),
    againstLayering: [...backEdges].map(([arrow, imports]) => ({ arrow, imports: [...imports] })),
    unrankedFolders: [...unranked],
    cycles: cyclesOf(graph),
    functions,
    storeLines,
  };
}

const args = process.argv.slice(2);
const longestIndex = args.indexOf('--longest');
const longest = longestIndex >= 0 ? Number(args[longestIndex + 1]) : 10;
const report = measure();
if (args.includes('--json')) {
  console.log(
    JSON.stringify({ ...report, functions: report.functions.slice(0, longest) }, null, 2),
  );
} else {
  console.log(`${report.files} files, ${report.lines} lines in src/`);
  console.log(`\nfolder-level arrows against the layering: ${report.againstLayering.length}`);
  for (const { arrow, imports } of report.againstLayering) {
    console.log(`  ${arrow}`);
    for (const line of imports) console.log(`      ${line}`);
  }
  if (report.unrankedFolders.length)
    console.log(
      `  (folders without a rank, every arrow to or from them counted: ${report.unrankedFolders.join(', ')})`,
    );
  console.log(`\nfile cycles: ${report.cycles.length}`);
  for (const cycle of report.cycles) console.log(`  ${cycle.join(' ⇄ ')}`);
  console.log(`\nlongest functions:`);
  for (const f of report.functions.slice(0, longest))
    console.log(`  ${String(f.lines).padStart(4)}  ${f.name}  ${f.file}:${f.start}`);
  console.log(`\nlines in the cloud stores:`);
  for (const [folder, lines] of Object.entries(report.storeLines))
    console.log(`  ${String(lines).padStart(5)}  ${folder}`);
}
