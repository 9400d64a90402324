import { describe } from "vitest";
import { openPglite } from "./kits.js";
import { describeDrizzleSuite } from "./suite.js";

describe("PGlite (in-process PostgreSQL)", () => describeDrizzleSuite(openPglite));
