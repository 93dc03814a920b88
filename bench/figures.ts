/**
 * Every benchmark figure, in the order `deno task bench` runs them and docs/benchmarks.md
 * shows them. The order matters where a figure changes the stack: the slow streams run before
 * isolation, whose million rows would only slow their setup, and every figure after isolation
 * runs with those rows in the tables. A new figure: a file in bench/figures/ and a line here.
 */
import type { Figure } from "./figure.ts";
import { branches } from "./figures/branches.ts";
import { bundle } from "./figures/bundle.ts";
import { coldStart } from "./figures/cold_start.ts";
import { firstByte } from "./figures/first_byte.ts";
import { isolation } from "./figures/isolation.ts";
import { longSessions } from "./figures/long_sessions.ts";
import { relay } from "./figures/relay.ts";
import { replyCost } from "./figures/reply_cost.ts";
import { resumable } from "./figures/resumable.ts";
import { roundTrips } from "./figures/round_trips.ts";
import { scale } from "./figures/scale.ts";
import { streams } from "./figures/streams.ts";
import { throughput } from "./figures/throughput.ts";

export const figures: Figure[] = [
  roundTrips,
  throughput,
  firstByte,
  relay,
  resumable,
  replyCost,
  streams,
  isolation,
  longSessions,
  branches,
  coldStart,
  bundle,
  scale,
];
