declare module 'pg/lib/utils.js' {
  const utils: {
    /** node-postgres's conversion of a query parameter to its text form (Dates, Buffers, arrays, objects as JSON; null stays null). */
    prepareValue: (value: unknown) => string | Buffer | null;
  };
  export default utils;
}
