// Value: a node's input or output, in its IValue JSON form ({"S": "text"}, {"U": "1"}, …),
// with the API of jsr:@space-operator/flow-lib's Value.
import { decodeBase58, decodeBase64, encodeBase58, encodeBase64 } from "./encoding.ts";
import { Keypair, PublicKey } from "./keys.ts";

export interface IValue {
  S?: string;
  D?: string;
  I?: string;
  U?: string;
  I1?: string;
  U1?: string;
  F?: string;
  B?: boolean;
  N?: 0;
  B3?: string;
  B6?: string;
  BY?: string;
  A?: IValue[];
  M?: Record<string, IValue>;
}

const TAGS = ["S", "D", "I", "U", "I1", "U1", "F", "B", "N", "B3", "B6", "BY", "A", "M"];
const NUMBER = /^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

function bytesOf(x: unknown): Uint8Array | undefined {
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  return undefined;
}

export class Value implements IValue {
  S?: string;
  D?: string;
  I?: string;
  U?: string;
  I1?: string;
  U1?: string;
  F?: string;
  B?: boolean;
  N?: 0;
  B3?: string;
  B6?: string;
  BY?: string;
  A?: Value[];
  M?: Record<string, Value>;

  /** A value inferred from a JavaScript one: numbers are decimals, bigints U1/I1, keys B3. */
  constructor(x?: unknown) {
    if (x === undefined) return Value.Null();
    const value = Value.#infer(x);
    if (value === undefined) throw new TypeError("cannot make a Value of a function");
    return value;
  }

  static #make(json: IValue): Value {
    return Object.assign(Object.create(Value.prototype), json);
  }

  static #infer(x: unknown): Value | undefined {
    if (x instanceof Value) return x;
    if (x !== null && typeof (x as { toFlowValue?: unknown }).toFlowValue === "function") {
      return (x as { toFlowValue(): Value }).toFlowValue();
    }
    switch (typeof x) {
      case "function":
        return undefined;
      case "number":
        return Value.Decimal(x);
      case "boolean":
        return Value.Boolean(x);
      case "string":
        return Value.String(x);
      case "undefined":
        return Value.Null();
      case "bigint":
        return x < 0n ? Value.I128(x) : Value.U128(x);
      case "symbol":
        return Value.String(x.toString());
    }
    if (x === null) return Value.Null();
    if (x instanceof PublicKey) return Value.#make({ B3: x.toBase58() });
    if (x instanceof Keypair) return Value.#make({ B6: encodeBase58(x.secretKey) });
    const bytes = bytesOf(x);
    if (bytes !== undefined) return Value.Bytes(bytes);
    if (Array.isArray(x)) {
      return Value.#make({
        A: x.map((item) => Value.#infer(item)).filter((item) => item !== undefined) as Value[],
      });
    }
    const entries = Object.entries(x as Record<string, unknown>)
      .map(([key, item]) => [key, Value.#infer(item)] as const)
      .filter(([, item]) => item !== undefined);
    return Value.#make({ M: Object.fromEntries(entries) as Record<string, Value> });
  }

  /** A value from its IValue JSON, checked. */
  static fromJSON(json: IValue): Value {
    const value = Value.#fromJSON(json);
    value.validate();
    return value;
  }

  static #fromJSON(json: IValue): Value {
    if (json instanceof Value) return json;
    const copy: IValue = { ...json };
    if (copy.A !== undefined) copy.A = copy.A.map((item) => Value.#fromJSON(item));
    if (copy.M !== undefined) {
      copy.M = Object.fromEntries(
        Object.entries(copy.M).map(([key, item]) => [key, Value.#fromJSON(item)]),
      );
    }
    return Value.#make(copy);
  }

  validate(): void {
    const keys = Object.keys(this).filter((key) => (this as Record<string, unknown>)[key] !== undefined);
    if (keys.length !== 1 || !TAGS.includes(keys[0])) throw new SyntaxError("invalid JSON data");
    if (this.D !== undefined && !NUMBER.test(this.D)) throw new SyntaxError(`invalid number: ${this.D}`);
    if (this.F !== undefined && !NUMBER.test(this.F) && !/^(-?inf|NaN)$/.test(this.F)) {
      throw new SyntaxError(`invalid number: ${this.F}`);
    }
    for (const key of ["I", "I1"] as const) if (this[key] !== undefined) BigInt(this[key]!);
    for (const key of ["U", "U1"] as const) {
      if (this[key] !== undefined && BigInt(this[key]!) < 0n) throw new SyntaxError("number is negative");
    }
    if (this.B3 !== undefined && decodeBase58(this.B3).length !== 32) throw new SyntaxError("bytes length != 32");
    if (this.B6 !== undefined && decodeBase58(this.B6).length !== 64) throw new SyntaxError("bytes length != 64");
    if (this.BY !== undefined) decodeBase64(this.BY);
    this.A?.forEach((item) => item.validate());
    if (this.M !== undefined) Object.values(this.M).forEach((item) => item.validate());
  }

  static U64(x: string | number | bigint): Value {
    const i = BigInt(x);
    if (i < 0n || i > 18446744073709551615n) throw new Error("value out of range");
    return Value.#make({ U: i.toString() });
  }
  static I64(x: string | number | bigint): Value {
    const i = BigInt(x);
    if (i < -9223372036854775808n || i > 9223372036854775807n) throw new Error("value out of range");
    return Value.#make({ I: i.toString() });
  }
  static U128(x: string | number | bigint): Value {
    const i = BigInt(x);
    if (i < 0n || i >= 1n << 128n) throw new Error("value out of range");
    return Value.#make({ U1: i.toString() });
  }
  static I128(x: string | number | bigint): Value {
    const i = BigInt(x);
    if (i < -(1n << 127n) || i >= 1n << 127n) throw new Error("value out of range");
    return Value.#make({ I1: i.toString() });
  }
  static String(x: string): Value {
    return Value.#make({ S: x });
  }
  static Float(x: number): Value {
    return Value.#make({ F: x.toString() });
  }
  static Decimal(x: number | string | bigint): Value {
    return Value.fromJSON({ D: x.toString() });
  }
  static Null(): Value {
    return Value.#make({ N: 0 });
  }
  static Boolean(x: boolean): Value {
    return Value.#make({ B: x });
  }
  static PublicKey(x: string | Uint8Array | PublicKey): Value {
    return Value.#make({ B3: new PublicKey(x).toBase58() });
  }
  static Signature(x: string | Uint8Array | ArrayBuffer): Value {
    return typeof x === "string" ? Value.fromJSON({ B6: x }) : Value.#make({ B6: encodeBase58(x) });
  }
  static Keypair(x: string | Uint8Array | ArrayBuffer | Keypair): Value {
    if (typeof x === "string") return Value.fromJSON({ B6: x });
    if (x instanceof Keypair) return Value.fromJSON({ B6: encodeBase58(x.secretKey) });
    return Value.fromJSON({ B6: encodeBase58(x) });
  }
  static Bytes(x: Uint8Array | ArrayBuffer): Value {
    const bytes = bytesOf(x)!;
    if (bytes.length === 32) return Value.#make({ B3: encodeBase58(bytes) });
    if (bytes.length === 64) return Value.#make({ B6: encodeBase58(bytes) });
    return Value.#make({ BY: encodeBase64(bytes) });
  }

  asBool(): boolean | undefined {
    return this.B;
  }
  asNumber(): number | undefined {
    for (const text of [this.U, this.I, this.F, this.U1, this.I1, this.D]) {
      if (text !== undefined) return parseFloat(text);
    }
    return undefined;
  }
  asBigInt(): bigint | undefined {
    for (const text of [this.U, this.I, this.U1, this.I1]) if (text !== undefined) return BigInt(text);
    return undefined;
  }
  asString(): string | undefined {
    return this.S;
  }
  asBytes(): Uint8Array | undefined {
    if (this.B3 !== undefined) return decodeBase58(this.B3);
    if (this.B6 !== undefined) return decodeBase58(this.B6);
    if (this.BY !== undefined) return decodeBase64(this.BY);
    if (this.A !== undefined) {
      const numbers = this.A.map((item) => item.asNumber());
      if (numbers.every((n) => n !== undefined && Number.isInteger(n) && n >= 0 && n <= 255)) {
        return new Uint8Array(numbers as number[]);
      }
    }
    return undefined;
  }
  asPubkey(): PublicKey | undefined {
    const bytes = this.S !== undefined ? decodeBase58(this.S) : this.asBytes();
    if (bytes?.length === 32) return new PublicKey(bytes);
    if (bytes?.length === 64) return new PublicKey(bytes.slice(32));
    return undefined;
  }
  asKeypair(): Keypair | undefined {
    const bytes = this.S !== undefined ? decodeBase58(this.S) : this.asBytes();
    return bytes === undefined ? undefined : Keypair.fromSecretKey(bytes);
  }
  asArray(): Value[] | undefined {
    return this.A;
  }
  asMap(): Record<string, Value> | undefined {
    return this.M;
  }

  /** As plain JavaScript: numbers as numbers (U1/I1 as bigints), keys and bytes as Uint8Array. */
  toJSObject(): any {
    if (this.S !== undefined) return this.S;
    if (this.D !== undefined) return parseFloat(this.D);
    if (this.I !== undefined) return parseFloat(this.I);
    if (this.U !== undefined) return parseFloat(this.U);
    if (this.I1 !== undefined) return BigInt(this.I1);
    if (this.U1 !== undefined) return BigInt(this.U1);
    if (this.F !== undefined) return parseFloat(this.F);
    if (this.B !== undefined) return this.B;
    if (this.N !== undefined) return null;
    if (this.B3 !== undefined) return decodeBase58(this.B3);
    if (this.B6 !== undefined) return decodeBase58(this.B6);
    if (this.BY !== undefined) return decodeBase64(this.BY);
    if (this.A !== undefined) return this.A.map((item) => item.toJSObject());
    if (this.M !== undefined) {
      return Object.fromEntries(Object.entries(this.M).map(([key, item]) => [key, item.toJSObject()]));
    }
    throw new Error("invalid value");
  }
}
