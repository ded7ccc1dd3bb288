// Just enough of web3.js's PublicKey and Keypair for values to carry keys (no network, no
// signing: a JavaScript node here cannot reach a cluster).
import { decodeBase58, encodeBase58 } from "./encoding.ts";

export class PublicKey {
  readonly #bytes: Uint8Array;

  constructor(value: string | Uint8Array | number[] | PublicKey) {
    const bytes = value instanceof PublicKey
      ? value.toBytes()
      : typeof value === "string"
      ? decodeBase58(value)
      : Uint8Array.from(value);
    if (bytes.length !== 32) throw new Error("Invalid public key input");
    this.#bytes = bytes;
  }

  toBytes(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
  toBuffer(): Uint8Array {
    return this.toBytes();
  }
  toBase58(): string {
    return encodeBase58(this.#bytes);
  }
  toString(): string {
    return this.toBase58();
  }
  toJSON(): string {
    return this.toBase58();
  }
  equals(other: PublicKey): boolean {
    return this.toBase58() === other.toBase58();
  }
}

export class Keypair {
  readonly secretKey: Uint8Array;
  readonly publicKey: PublicKey;

  private constructor(secretKey: Uint8Array) {
    this.secretKey = secretKey;
    this.publicKey = new PublicKey(secretKey.slice(32));
  }

  /** A 64-byte keypair: the secret key, then its public key. */
  static fromSecretKey(secretKey: Uint8Array): Keypair {
    if (secretKey.length !== 64) throw new Error("bad secret key size");
    return new Keypair(Uint8Array.from(secretKey));
  }
}
