/** The workbench's colour maps (src/shared/figures/colormap.ts), for the PNG figures written here. */
export { colourise, diverging, viridis } from '../../shared/figures/colormap'
