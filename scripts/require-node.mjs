// Refuses to go on under an older Node.js than a command needs, with what to do; used by `npm start` and
// `npm run dev` (Electron 45 and its downloader need Node >= 22.12; everything else runs on 20.19).
const [wanted, what] = process.argv.slice(2)
const [major, minor] = process.versions.node.split('.').map(Number)
const [needMajor, needMinor] = wanted.split('.').map(Number)
if (major < needMajor || (major === needMajor && minor < needMinor)) {
  process.stderr.write(
    `error: ${what} needs Node.js >= ${wanted}; this is ${process.versions.node}. ` +
      'Install a newer Node.js (https://nodejs.org), or use the browser UI: `npm run r2b -- serve`.\n',
  )
  process.exit(1)
}
