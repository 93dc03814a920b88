/**
 * What is wrong with an export file, as the API's 422 names it: FastAPI's `{loc, msg, type}`,
 * `loc` the path in the file under `body` (`["body", 0, "mapping", "<node id>", "parent"]`).
 */
import type { z } from "zod";
import { ApiError } from "../errors.ts";

export interface Problem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** At most this many problems are listed: a broken file can have one per node. */
const LISTED = 20;

/** A 422 naming the problems, each under `body`. */
export function unimportable(problems: Problem[]): ApiError {
  return new ApiError(
    422,
    problems.slice(0, LISTED).map((p) => ({ ...p, loc: ["body", ...p.loc] })),
  );
}

/** zod's issues as problems, under `at`. */
export function issueProblems(at: (string | number)[], issues: z.core.$ZodIssue[]): Problem[] {
  return issues.map((issue) => ({
    loc: [...at, ...issue.path.map((p) => typeof p === "symbol" ? String(p) : p)],
    msg: issue.message,
    type: issue.code === "invalid_type" && issue.input === undefined ? "missing" : issue.code,
  }));
}
