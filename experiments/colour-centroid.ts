// The centroid of the pixels of one exact colour in an RGB frame: what a frame of the built-in
// renderer (no anti-aliasing) holds about where a flat-coloured object is (docs/results.md 3h).

/**
 * @param img uint8 [side, side, 3]
 * @returns the centroid (u, v) in image half-widths ([-1, 1], u to the right, v down, the
 *   keypoints' convention), or undefined when no pixel has the colour
 */
export function colourCentroid(
  img: Uint8Array,
  side: number,
  rgb: readonly number[],
): [number, number] | undefined {
  let sx = 0;
  let sy = 0;
  let m = 0;
  for (let i = 0; i < side * side; i++)
    if (img[3 * i] === rgb[0] && img[3 * i + 1] === rgb[1] && img[3 * i + 2] === rgb[2]) {
      sx += (i % side) + 0.5;
      sy += Math.floor(i / side) + 0.5;
      m++;
    }
  if (m === 0) return undefined;
  return [(2 * sx) / m / side - 1, (2 * sy) / m / side - 1];
}
