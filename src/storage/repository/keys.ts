// The keys of a location's data repository, all derived (HKDF-SHA256) from the location's key,
// which lives in a Secret of the operator's namespace and never in the bucket. Each location has
// its own key, so one leaked key opens one location, not every user's (Velero's single static
// repository password is the weakness this avoids). Losing the location key loses its backups.

import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';

const INFO = 'snapback.dev/repository/v1';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** What authenticated decryption refused: the wrong key, or bytes changed in the store. */
export class SealError extends Error {
  constructor(readonly what: string) {
    super(`${what} failed authentication (AES-256-GCM): it was altered, or sealed with another key`);
    this.name = 'SealError';
  }
}

export class RepositoryKeys {
  private readonly idKey: KeyObject;
  private readonly sealKey: Buffer;
  /** Proves the key is the repository's without decrypting anything (in the plaintext config). */
  readonly keyCheck: string;
  /** The chunker's gear table: chunk boundaries reveal nothing about content to the bucket's readers. */
  readonly gear: Uint32Array;

  constructor(locationKey: Buffer, repositoryId: string) {
    const derive = (purpose: string, bytes: number): Buffer =>
      Buffer.from(hkdfSync('sha256', locationKey, repositoryId, `${INFO}/${purpose}`, bytes));
    // A KeyObject made once: from raw bytes, every HMAC would make its own.
    this.idKey = createSecretKey(derive('chunk-id', 32));
    this.sealKey = derive('seal', 32);
    this.keyCheck = derive('key-check', 32).toString('hex');
    const table = derive('gear', 256 * 4);
    this.gear = new Uint32Array(256);
    for (let i = 0; i < 256; i++) this.gear[i] = table.readUInt32LE(i * 4);
  }

  /** A chunk's id: HMAC-SHA256 of its content, so equal content has one id and the id tells nothing. */
  chunkId(data: Uint8Array): string {
    return createHmac('sha256', this.idKey).update(data).digest('hex');
  }

  /** Whether `expected` is this key's check, in constant time. */
  checks(expected: string): boolean {
    const a = Buffer.from(this.keyCheck, 'hex');
    const b = Buffer.from(expected, 'hex');
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /**
   * A sealer for one object: its own key (HKDF over the object's name, which is never reused), so
   * a counter is a safe nonce, and what each part is bound to (`aad`) keeps parts from being moved.
   */
  objectSealer(objectName: string): ObjectSealer {
    return new ObjectSealer(
      Buffer.from(hkdfSync('sha256', this.sealKey, objectName, `${INFO}/object`, 32)),
      objectName,
    );
  }
}

export class ObjectSealer {
  /** A KeyObject made once: from raw bytes, every cipher would make its own. */
  private readonly key: KeyObject;

  constructor(
    key: Buffer,
    private readonly objectName: string,
  ) {
    this.key = createSecretKey(key);
  }

  private static nonce(index: number): Buffer {
    const nonce = Buffer.alloc(NONCE_BYTES);
    nonce.writeUInt32BE(index, NONCE_BYTES - 4);
    return nonce;
  }

  /** The part `index` of the object, encrypted and authenticated together with `aad`. */
  seal(index: number, plaintext: Uint8Array, aad: string): Buffer {
    const cipher = createCipheriv('aes-256-gcm', this.key, ObjectSealer.nonce(index));
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([body, cipher.getAuthTag()]);
  }

  /** The plaintext of part `index`, or SealError naming `what` when it does not authenticate. */
  open(index: number, sealed: Uint8Array, aad: string, what = this.objectName): Buffer {
    if (sealed.length < TAG_BYTES) throw new SealError(what);
    const decipher = createDecipheriv('aes-256-gcm', this.key, ObjectSealer.nonce(index));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      return Buffer.concat([
        decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new SealError(what);
    }
  }
}
