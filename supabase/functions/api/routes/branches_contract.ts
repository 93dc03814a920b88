/**
 * The contract of a session's conversation tree: read a branch (the current
 * one, or any other), make another branch current, delete a branch.
 */
import { z } from "@hono/zod-openapi";
import { createRoute, errors, json } from "../contract.ts";
import { pageHeaders, PageQuery } from "../pagination.ts";
import {
  BranchMessage,
  CurrentBody,
  CurrentMessage,
  MessagePath,
  ReadSessionQuery,
  SessionPath,
} from "../schemas.ts";

export const readSessionRoute = createRoute({
  method: "get",
  path: "/sessions/{session_id}",
  operationId: "readSession",
  tags: ["sessions"],
  summary: "A session's current branch in conversation order (paged: newest page first); " +
    "?leaf= reads another",
  request: { params: SessionPath, query: PageQuery.extend(ReadSessionQuery.shape) },
  responses: {
    200: {
      description: "The branch's messages, each with its parent and its siblings",
      headers: pageHeaders,
      content: { "application/json": { schema: z.array(BranchMessage) } },
    },
    ...errors(401, 404, 422, 503),
  },
});

export const switchBranchRoute = createRoute({
  method: "put",
  path: "/sessions/{session_id}/current",
  operationId: "switchBranch",
  tags: ["sessions"],
  summary: "Make the branch through a message current (to its newest leaf): what reads, the " +
    "next send and its prompt follow",
  request: {
    params: SessionPath,
    body: { required: true, content: { "application/json": { schema: CurrentBody } } },
  },
  responses: {
    200: json("The new current leaf", CurrentMessage),
    ...errors(401, 404, 413, 422, 503),
  },
});

export const DeletedBranch = CurrentMessage.extend({
  detail: z.string(),
  deleted: z.number().int().describe("how many messages went: the message and all after it"),
}).openapi("DeletedBranch");

export const deleteBranchRoute = createRoute({
  method: "delete",
  path: "/sessions/{session_id}/messages/{message_id}",
  operationId: "deleteBranch",
  tags: ["sessions"],
  summary: "Delete a message and everything after it (a branch); when the current branch was " +
    "in it, the current leaf moves to what remains",
  request: { params: MessagePath },
  responses: {
    200: json("Deleted; where the current branch is now", DeletedBranch),
    ...errors(401, 404, 422, 503),
  },
});
