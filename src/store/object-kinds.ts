/**
 * The kinds of stored objects and their one-byte codes (docs/format.md). They live at the bottom
 * of the layering because both the object formats (objects/) and the wire format of server packs
 * (store/http) name them; objects/kinds.ts re-exports them.
 */
export type ObjectKind = 'chunk' | 'manifest' | 'tree' | 'commit' | 'tag';

/** Kind byte in the stored envelope and in pack records. Never renumber. */
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
