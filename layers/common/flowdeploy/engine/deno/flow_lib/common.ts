export type FlowId = string;
export type FlowRunId = string;
export type NodeId = string;
export type UserId = string;
export interface User {
  id: UserId;
}
