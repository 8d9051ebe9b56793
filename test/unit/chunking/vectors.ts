/**
 * Definition of the committed chunking test vectors (fixtures/vectors/chunking.json): which inputs,
 * params and gear tables they cover, and how expected results are computed. The test compares the
 * committed JSON against a fresh computation; regen-vectors.ts rewrites it (only on purpose).
 */
import { join } from 'node:path';
import {
  chunkBuffer,
  DEFAULT_CHUNKING,
  defaultGear,
  gearFromSeed,
  type ChunkingParams,
} from '../../../src/chunking/index.js';
import { repoRoot, sha256Hex, SMALL, xorshift32Bytes } from './helpers.js';

export type InputSpec =
  | { kind: 'xorshift32'; seed: number; length: number }
  | { kind: 'zeros'; length: number }
  /** byte i = i mod 256 */
  | { kind: 'counter'; length: number };

/** "default", or the hex of a 32-byte seed for gearFromSeed. */
export type GearSpec = 'default' | { seedHex: string };

export interface VectorSpec {
  name: string;
  input: InputSpec;
  params: ChunkingParams;
  gear: GearSpec;
}

export interface Vector extends VectorSpec {
  inputSha256: string;
  chunks: { length: number; sha256: string }[];
}

export interface VectorFile {
  description: string;
  regenerate: string;
  vectors: Vector[];
}

const SEED_A = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
const SEED_B = 'ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100';

export const VECTOR_SPECS: readonly VectorSpec[] = [
  { name: 'empty', input: { kind: 'zeros', length: 0 }, params: SMALL, gear: 'default' },
  {
    name: 'smaller-than-min',
    input: { kind: 'xorshift32', seed: 7, length: 1000 },
    params: SMALL,
    gear: 'default',
  },
  {
    name: 'random-1MiB-small-params',
    input: { kind: 'xorshift32', seed: 0x12345678, length: 1 << 20 },
    params: SMALL,
    gear: 'default',
  },
  {
    name: 'random-1MiB-small-params-seeded-gear-A',
    input: { kind: 'xorshift32', seed: 0x12345678, length: 1 << 20 },
    params: SMALL,
    gear: { seedHex: SEED_A },
  },
  {
    name: 'random-1MiB-small-params-seeded-gear-B',
    input: { kind: 'xorshift32', seed: 0x12345678, length: 1 << 20 },
    params: SMALL,
    gear: { seedHex: SEED_B },
  },
  {
    name: 'random-odd-min-max',
    input: { kind: 'xorshift32', seed: 99, length: 300_000 },
    params: { minSize: 3000, avgSize: 8192, maxSize: 20_000 },
    gear: 'default',
  },
  {
    name: 'random-smallest-allowed-params',
    input: { kind: 'xorshift32', seed: 42, length: 65_536 },
    params: { minSize: 64, avgSize: 256, maxSize: 1024 },
    gear: 'default',
  },
  {
    name: 'zeros-small-params',
    input: { kind: 'zeros', length: 100_000 },
    params: SMALL,
    gear: 'default',
  },
  {
    name: 'counter-small-params',
    input: { kind: 'counter', length: 200_000 },
    params: SMALL,
    gear: 'default',
  },
  {
    name: 'random-12MiB-default-params',
    input: { kind: 'xorshift32', seed: 1, length: 12 << 20 },
    params: DEFAULT_CHUNKING,
    gear: 'default',
  },
  {
    name: 'random-12MiB-default-params-seeded-gear-A',
    input: { kind: 'xorshift32', seed: 1, length: 12 << 20 },
    params: DEFAULT_CHUNKING,
    gear: { seedHex: SEED_A },
  },
];

export function makeInput(spec: InputSpec): Uint8Array {
  switch (spec.kind) {
    case 'xorshift32':
      return xorshift32Bytes(spec.seed, spec.length);
    case 'zeros':
      return new Uint8Array(spec.length);
    case 'counter': {
      const out = new Uint8Array(spec.length);
      for (let i = 0; i < out.length; i++) out[i] = i & 0xff;
      return out;
    }
  }
}

export function makeGear(spec: GearSpec): Uint32Array {
  return spec === 'default' ? defaultGear() : gearFromSeed(Buffer.from(spec.seedHex, 'hex'));
}

export function computeVector(spec: VectorSpec): Vector {
  const data = makeInput(spec.input);
  const chunks = chunkBuffer(data, spec.params, makeGear(spec.gear));
  return {
    name: spec.name,
    input: spec.input,
    params: {
      minSize: spec.params.minSize,
      avgSize: spec.params.avgSize,
      maxSize: spec.params.maxSize,
    },
    gear: spec.gear,
    inputSha256: sha256Hex(data),
    chunks: chunks.map((c) => ({ length: c.length, sha256: sha256Hex(c) })),
  };
}

export function computeVectorFile(): VectorFile {
  return {
    description:
      'mediagit FastCDC test vectors; inputs, gear tables and the algorithm are specified in docs/chunking.md. ' +
      'A change here means chunk boundaries changed, which breaks deduplication against existing repositories.',
    regenerate: 'npx tsc -p tsconfig.json && node dist/test/unit/chunking/regen-vectors.js --write',
    vectors: VECTOR_SPECS.map(computeVector),
  };
}

export function vectorFilePath(): string {
  return join(repoRoot(), 'fixtures', 'vectors', 'chunking.json');
}
