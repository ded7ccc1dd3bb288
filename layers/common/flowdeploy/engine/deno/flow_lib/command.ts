// CommandTrait and BaseCommand: what a JavaScript node's default export implements.
import type { Context } from "./context.ts";
import { Value } from "./value.ts";

export type CommandType = "native" | "deno" | "bun" | "WASM" | "mock";
export type ValueTypeBound = string;

export interface Source {
  id: string;
  name: string;
  type: ValueTypeBound;
  optional: boolean;
}

export interface Target {
  id: string;
  name: string;
  type_bounds: ValueTypeBound[];
  required: boolean;
  passthrough: boolean;
}

export interface NodeData {
  type: CommandType;
  node_id: string;
  outputs: Source[];
  inputs: Target[];
  config: Record<string, any>;
}

export interface CommandTrait {
  deserializeInputs?(inputs: Record<string, Value>): Record<string, any>;
  serializeOutputs?(outputs: Record<string, any>): Record<string, Value>;
  run(ctx: Context, params: Record<string, any>): Promise<Record<string, any>>;
}

const AS_NUMBER = new Set(["u8", "u16", "u32", "i8", "i16", "i32", "f32", "f64", "number", "decimal"]);
const AS_BIGINT = new Set(["u64", "u128", "i64", "i128"]);

/** An input as its port's first typed bound reads it; undefined leaves it to toJSObject. */
export function deserializeInput(port: Pick<Target, "type_bounds">, input: Value): any {
  for (const bound of port.type_bounds) {
    if (bound === "bool") return input.asBool();
    if (AS_NUMBER.has(bound)) return input.asNumber();
    if (AS_BIGINT.has(bound)) return input.asBigInt();
    if (bound === "pubkey") return input.asPubkey();
    if (bound === "keypair") return input.asKeypair();
    if (bound === "signature" || bound === "bytes") return input.asBytes();
    if (bound === "string" || bound === "address") return input.asString();
  }
  return undefined;
}

/** An output as its port's type writes it; undefined leaves it to `new Value`. */
export function serializeOutput(port: Pick<Source, "type">, output: any): Value | undefined {
  switch (port.type) {
    case "bool":
      return Value.Boolean(Boolean(output));
    case "u8":
    case "u16":
    case "u32":
      return Value.U64(parseInt(output));
    case "u64":
      return Value.U64(BigInt(output));
    case "u128":
      return Value.U128(BigInt(output));
    case "i8":
    case "i16":
    case "i32":
      return Value.I64(parseInt(output));
    case "i64":
      return Value.I64(BigInt(output));
    case "i128":
      return Value.I128(BigInt(output));
    case "f32":
    case "f64":
      return Value.Float(parseFloat(output));
    case "number":
    case "decimal":
      return Value.Decimal(output);
    case "pubkey":
      return Value.PublicKey(output);
    case "keypair":
      return Value.Keypair(output);
    case "signature":
      return Value.Signature(output);
    case "string":
    case "address":
      return Value.String(output);
    case "bytes":
      return Value.Bytes(output);
  }
  return undefined;
}

export class BaseCommand implements CommandTrait {
  protected nd: NodeData;

  constructor(nd: NodeData) {
    this.nd = nd;
  }

  deserializeInputs(inputs: Record<string, Value>): Record<string, any> {
    return Object.fromEntries(
      Object.entries(inputs).map(([name, value]) => {
        const port = this.nd.inputs.find((input) => input.name === name);
        const read = port === undefined ? undefined : deserializeInput(port, value);
        return [name, read !== undefined ? read : value.toJSObject()];
      }),
    );
  }

  serializeOutputs(outputs: Record<string, any>): Record<string, Value> {
    return Object.fromEntries(
      Object.entries(outputs).map(([name, value]) => {
        const port = this.nd.outputs.find((output) => output.name === name);
        const written = port === undefined ? undefined : serializeOutput(port, value);
        return [name, written !== undefined ? written : new Value(value)];
      }),
    );
  }

  run(_ctx: Context, _params: Record<string, any>): Promise<Record<string, any>> {
    throw new Error("unimplemented");
  }
}
