/**
 * What `sharp` is in the kit's bundle: nothing. sharp is a native module with its own libvips; the kit's parts
 * never decode or encode an image file (the dataset is IDX, figures are numbers), so the bundle carries this
 * instead, and anything that does reach for image decoding says why it cannot.
 */
function sharp(): never {
  throw new Error(
    'image decoding (sharp) is not part of the GPU kit: use the workbench itself for image files',
  )
}

export default sharp
