// This service's jsr:@space-operator/flow-lib: the same exports, resolved by an import map.
export { BaseCommand, type CommandTrait, deserializeInput, type NodeData, serializeOutput } from "./command.ts";
export { Context, type CommandContext, type ContextProxy, type User } from "./context.ts";
export { type IValue, Value } from "./value.ts";
export { Keypair, PublicKey } from "./keys.ts";
export type FlowId = string;
export type FlowRunId = string;
export type NodeId = string;
export type UserId = string;
