/**
 * The names of WorkbenchApi's request methods. Kept free of imports so the sandboxed preload can build the
 * API object from it without bundling the schemas; src/shared/api.ts checks it matches the schemas.
 */
export const API_METHODS = [
  'about',
  'listDatasets',
  'datasetSamples',
  'readImages',
  'findImages',
  'importDataset',
  'cancelImport',
  'pickImportPath',
  'renameDataset',
  'removeDataset',
  'listRuns',
  'runHistory',
  'readSnapshot',
  'inspectImage',
  'startRun',
  'pauseRun',
  'resumeRun',
  'stopRun',
  'removeRun',
  'attachRun',
  'modelSummary',
  'estimateRun',
  'exportStage',
  'listAblations',
] as const
export type ApiMethod = (typeof API_METHODS)[number]

/** The IPC channels of the Electron transport. */
export const IPC_CALL = 'workbench:call'
export const IPC_EVENT = 'workbench:event'
