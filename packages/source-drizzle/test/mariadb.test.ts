import { describe } from "vitest";
import { openMariadb } from "./kits.js";
import { describeDrizzleSuite } from "./suite.js";

describe("MariaDB via mysql2", () => describeDrizzleSuite(openMariadb));
