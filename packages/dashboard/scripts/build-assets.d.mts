/** Absolute path of the generated module, src/assets.ts. */
export declare const ASSETS_MODULE: string;
/** The text of src/assets.ts, built from client/. */
export declare function generateAssets(): Promise<string>;
