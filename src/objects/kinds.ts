export type ObjectKind = 'chunk' | 'manifest' | 'tree' | 'commit' | 'tag';

/** Kind byte in the stored envelope (docs/format.md). Never renumber. */
export const KIND_CODES: Readonly<Record<ObjectKind, number>> = {
  chunk: 1,
  manifest: 2,
  tree: 3,
  commit: 4,
  tag: 5,
};

export function kindFromCode(code: number): ObjectKind | undefined {
  for (const [kind, value] of Object.entries(KIND_CODES) as [ObjectKind, number][])
    if (value === code) return kind;
  return undefined;
}
