// autocannon's verifyBody for worker threads (`--workers`), which take hooks as file paths.
'use strict'
module.exports = require('./scenarios.cjs').verifyBody
