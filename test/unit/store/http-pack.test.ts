/** The pack format of docs/protocol.md, byte for byte, and its refusal of damaged input. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  PackFormatError,
  decodePack,
  encodePack,
  encodePackPieces,
  packRecordKey,
  packSize,
} from '../../../src/store/http/pack.js';
import { oidFor } from '../../support/store-contract.js';

describe('pack format', () => {
  test('layout: "MGPK", version 1, u32 count, then kind | OID | u32 length | bytes per record', () => {
    const oid = oidFor('one');
    const pack = encodePack([{ kind: 'tree', oid, data: Buffer.from('abc') }]);
    const expected = Buffer.concat([
      Buffer.from('MGPK'),
      Buffer.from([1, 0, 0, 0, 1]),
      Buffer.from([3]),
      Buffer.from(oid, 'hex'),
      Buffer.from([0, 0, 0, 3]),
      Buffer.from('abc'),
    ]);
    assert.ok(pack.equals(expected), pack.toString('hex'));
    assert.equal(packSize([{ data: Buffer.from('abc') }]), expected.length);
  });

  test("a pack goes out as pieces that are the records' own memory, not a copy of them", () => {
    const records = (['chunk', 'chunk', 'manifest', 'tree'] as const).map((kind, i) => ({
      kind,
      oid: oidFor(`${kind}${i}`),
      data: Buffer.alloc(100_000 + i, i + 1),
    }));
    const pieces = encodePackPieces(records);
    // Header (with the pack's own in front), then the record's bytes, for each record.
    assert.equal(pieces.length, 2 * records.length);
    records.forEach((record, i) => {
      const data = pieces[2 * i + 1]!;
      assert.equal(data.buffer, record.data.buffer, `record ${i} was copied`);
      assert.equal(data.byteOffset, record.data.byteOffset);
      assert.equal(data.length, record.data.length);
    });
    // The record headers are one allocation between them.
    assert.ok(pieces.every((p, i) => i % 2 === 1 || p.buffer === pieces[0]!.buffer));
    assert.ok(Buffer.concat(pieces).equals(encodePack(records)));
    assert.deepEqual(
      decodePack(Buffer.concat(pieces)).map((r) => r.oid),
      records.map((r) => r.oid),
    );
    assert.ok(Buffer.concat(encodePackPieces([])).equals(encodePack([])));
  });

  test('round-trips every kind, empty records and an empty pack', () => {
    const records = (['chunk', 'manifest', 'tree', 'commit', 'tag'] as const).map((kind, i) => ({
      kind,
      oid: oidFor(kind),
      data: Buffer.alloc(i * 100, i),
    }));
    const decoded = decodePack(encodePack(records));
    assert.equal(decoded.length, 5);
    decoded.forEach((r, i) => {
      assert.equal(r.kind, records[i]!.kind);
      assert.equal(r.oid, records[i]!.oid);
      assert.ok(Buffer.from(r.data).equals(records[i]!.data));
    });
    assert.deepEqual(decodePack(encodePack([])), []);
    assert.equal(packRecordKey({ kind: 'chunk', oid: oidFor('c') }), `chunks/${oidFor('c')}`);
    assert.equal(packRecordKey({ kind: 'manifest', oid: oidFor('m') }), `objects/${oidFor('m')}`);
  });

  test('damaged packs are refused: magic, version, kind, truncation, trailing bytes, an impossible count', () => {
    const good = encodePack([{ kind: 'chunk', oid: oidFor('x'), data: Buffer.from('hello') }]);
    const damage = (at: number, value: number): Buffer => {
      const copy = Buffer.from(good);
      copy[at] = value;
      return copy;
    };
    for (const bad of [
      damage(0, 0x58),
      damage(4, 2),
      damage(9, 9),
      good.subarray(0, good.length - 1),
      Buffer.concat([good, Buffer.from([0])]),
      good.subarray(0, 5),
    ]) {
      assert.throws(() => decodePack(bad), PackFormatError);
    }
    const lying = Buffer.from(good);
    lying.writeUInt32BE(0xffffffff, 5);
    assert.throws(() => decodePack(lying), /claims/);
    assert.throws(
      () => encodePack([{ kind: 'chunk', oid: 'not-an-oid', data: Buffer.alloc(0) }]),
      TypeError,
    );
  });
});
