// Context: what a running JavaScript node knows about its run. Here a node runs with no
// network: the Solana connection, signature requests and `execute` are not available.
export interface User {
  id: string;
}

export interface CommandContext {
  flow_run_id: string;
  node_id: string;
  times: number;
}

export interface ContextProxy {
  data: {
    node_id: string;
    times: number;
    flow: {
      flow_run_id: string;
      environment: Record<string, string>;
      set: {
        flow_owner: User;
        started_by: User;
        endpoints: Record<string, string>;
        solana: { url: string; cluster: string };
        http: { timeout_in_secs: number; gzip: boolean };
      };
    };
  };
}

function unavailable(what: string): never {
  throw new Error(`${what} is not available here: JavaScript nodes run without network access`);
}

export class Context {
  #data: ContextProxy;

  constructor(data: ContextProxy) {
    this.#data = data;
  }

  get flow_owner(): User {
    return this.#data.data.flow.set.flow_owner;
  }
  get started_by(): User {
    return this.#data.data.flow.set.started_by;
  }
  get environment(): Record<string, string> {
    return this.#data.data.flow.environment;
  }
  get endpoints(): Record<string, string> {
    return this.#data.data.flow.set.endpoints;
  }
  get command(): CommandContext {
    return {
      flow_run_id: this.#data.data.flow.flow_run_id,
      node_id: this.#data.data.node_id,
      times: this.#data.data.times,
    };
  }
  get kv(): never {
    throw new Error("ctx.kv is not available in script runtimes; use kv_read_item/kv_write_item nodes");
  }
  get solana(): never {
    return unavailable("ctx.solana (a Solana connection)");
  }
  requestSignature(): Promise<never> {
    return Promise.reject(new Error("ctx.requestSignature is not available here: use Solana nodes"));
  }
  requestMessageSignature(): Promise<never> {
    return Promise.reject(new Error("ctx.requestMessageSignature is not available here"));
  }
  execute(): Promise<never> {
    return Promise.reject(new Error("ctx.execute is not available here: use Solana nodes"));
  }
}
