// Runs one JavaScript node: reads {node, context, inputs} as JSON on stdin, writes
// {"Ok": outputs} or {"Err": message}, with what the node logged, as one JSON line on stdout.
import { Context, type ContextProxy, type IValue, Value } from "./flow_lib/mod.ts";

const MAX_LOG_LINES = 100;
const MAX_LOG_CHARS = 2000;

type Logged = { level: string; content: string };

function text(data: unknown[]): string {
  return data
    .map((item) => {
      if (typeof item === "string") return item;
      try {
        return typeof item === "object" ? JSON.stringify(item) : String(item);
      } catch {
        return String(item);
      }
    })
    .join(" ")
    .slice(0, MAX_LOG_CHARS);
}

export async function main(module: { default?: unknown }): Promise<void> {
  const logs: Logged[] = [];
  const capture = (level: string) => (...data: unknown[]) => {
    if (logs.length < MAX_LOG_LINES) logs.push({ level, content: text(data) });
  };
  const console = globalThis.console;
  for (const [name, level] of [["log", "info"], ["info", "info"], ["debug", "debug"], ["trace", "debug"], ["warn", "warn"], ["error", "error"]]) {
    (console as unknown as Record<string, unknown>)[name] = capture(level);
  }
  let reply: { Ok?: Record<string, Value>; Err?: string };
  try {
    const request = JSON.parse(await new Response(Deno.stdin.readable).text()) as {
      node: Record<string, unknown>;
      context: ContextProxy;
      inputs: Record<string, IValue>;
    };
    const Command = module.default as new (nd: unknown) => {
      run(ctx: Context, params: Record<string, unknown>): Promise<Record<string, unknown>>;
      deserializeInputs?(inputs: Record<string, Value>): Record<string, unknown>;
      serializeOutputs?(outputs: Record<string, unknown>): Record<string, Value>;
    };
    if (typeof Command !== "function") throw new Error("the script's default export must be a command class");
    const command = new Command(request.node);
    const params = Value.fromJSON({ M: request.inputs });
    const inputs = typeof command.deserializeInputs === "function"
      ? command.deserializeInputs(params.M!)
      : params.toJSObject();
    const outputs = await command.run(new Context(request.context), inputs);
    const written = typeof command.serializeOutputs === "function"
      ? command.serializeOutputs(outputs ?? {})
      : new Value(outputs ?? {}).M!;
    reply = { Ok: written };
  } catch (error) {
    reply = { Err: String(error) };
  }
  const line = JSON.stringify({ ...reply, logs }, (_key, value) => typeof value === "bigint" ? value.toString() : value);
  await Deno.stdout.write(new TextEncoder().encode(line + "\n"));
}
