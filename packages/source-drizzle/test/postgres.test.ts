import { describe } from "vitest";
import { openPostgres } from "./kits.js";
import { describeDrizzleSuite } from "./suite.js";

describe("PostgreSQL via node-postgres", () => describeDrizzleSuite(openPostgres));
