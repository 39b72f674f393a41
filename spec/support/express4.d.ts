// `express4` is Express 4 installed under an alias (npm:express@^4) so both majors run in one
// suite. Its API is typed with Express's types: the parts the specs use are the same in 4 and 5.
declare module 'express4' {
  import express = require('express');
  export = express;
}
