// A small software rasteriser for the camera image: uint8 RGB, row-major [I, I, 3], the
// workspace [-1, 1]^2 seen from above (y up). Pixel centres are tested against each shape
// (discs, capsules, rings, squares) inside its bounding box: no anti-aliasing, so a frame is
// a pure function of the scene, bit for bit. Optional appearance and camera shifts.

export type Rgb = readonly [number, number, number];

export interface Appearance {
  background: Rgb;
  floor: Rgb;
  arm: Rgb;
  joint: Rgb;
  target: Rgb;
  block: Rgb;
  goal: Rgb;
}

export const DEFAULT_APPEARANCE: Readonly<Appearance> = Object.freeze({
  background: [32, 32, 40] as Rgb,
  floor: [200, 200, 190] as Rgb,
  arm: [40, 70, 170] as Rgb,
  joint: [20, 20, 60] as Rgb,
  target: [220, 40, 40] as Rgb,
  block: [40, 170, 60] as Rgb,
  goal: [230, 200, 40] as Rgb,
});

export interface Camera {
  /** World units shown across the image (2 = the whole workspace). */
  span: number;
  /** Rotation of the view (rad). */
  rotation: number;
  /** World point at the image centre. */
  centerX: number;
  centerY: number;
}

export const DEFAULT_CAMERA: Readonly<Camera> = Object.freeze({
  span: 2.1,
  rotation: 0,
  centerX: 0,
  centerY: 0,
});

export interface Scene {
  /** Joint positions [x0, y0, ..., xn, yn]. */
  joints: ArrayLike<number>;
  linkRadius: number;
  eeRadius: number;
  target?: readonly [number, number];
  targetRadius: number;
  block?: readonly [number, number];
  blockHalf: number;
  goal?: readonly [number, number];
  goalRadius: number;
}

/**
 * World point -> image position (u, v) in [-1, 1] (u to the right, v down; the image edges are
 * -1 and 1), the convention of a vision tower's keypoints.
 */
export function worldToImage(camera: Camera, x: number, y: number): [number, number] {
  const dx = x - camera.centerX;
  const dy = y - camera.centerY;
  const c = Math.cos(-camera.rotation);
  const s = Math.sin(-camera.rotation);
  const k = 2 / camera.span;
  return [(dx * c - dy * s) * k, -(dx * s + dy * c) * k];
}

/** Image position (u, v) -> world point: the inverse of `worldToImage`. */
export function imageToWorld(camera: Camera, u: number, v: number): [number, number] {
  const a = (u * camera.span) / 2;
  const b = (-v * camera.span) / 2;
  const c = Math.cos(-camera.rotation);
  const s = Math.sin(-camera.rotation);
  return [camera.centerX + c * a + s * b, camera.centerY - s * a + c * b];
}

/** A canvas bound to one image buffer and one camera. */
export class Raster {
  private readonly scale: number;
  private readonly cos: number;
  private readonly sin: number;

  constructor(
    readonly size: number,
    readonly pixels: Uint8Array,
    readonly camera: Camera = DEFAULT_CAMERA,
  ) {
    if (pixels.length !== size * size * 3)
      throw new Error(`image buffer of ${pixels.length} bytes for ${size}x${size} RGB`);
    this.scale = size / camera.span;
    this.cos = Math.cos(-camera.rotation);
    this.sin = Math.sin(-camera.rotation);
  }

  /** World -> pixel coordinates (column, row), continuous. */
  toPixel(x: number, y: number): [number, number] {
    const dx = x - this.camera.centerX;
    const dy = y - this.camera.centerY;
    const rx = dx * this.cos - dy * this.sin;
    const ry = dx * this.sin + dy * this.cos;
    return [this.size / 2 + rx * this.scale, this.size / 2 - ry * this.scale];
  }

  fill(c: Rgb): void {
    const p = this.pixels;
    for (let i = 0; i < p.length; i += 3) {
      p[i] = c[0];
      p[i + 1] = c[1];
      p[i + 2] = c[2];
    }
  }

  private put(col: number, row: number, c: Rgb): void {
    const k = (row * this.size + col) * 3;
    this.pixels[k] = c[0];
    this.pixels[k + 1] = c[1];
    this.pixels[k + 2] = c[2];
  }

  /** Pixels whose centre lies within distance r (world) of segment a-b; r0 > 0 makes a ring around a point. */
  capsule(ax: number, ay: number, bx: number, by: number, r: number, c: Rgb, r0 = -1): void {
    const [pax, pay] = this.toPixel(ax, ay);
    const [pbx, pby] = this.toPixel(bx, by);
    const rp = r * this.scale;
    const rp0 = r0 * this.scale;
    const minC = Math.max(0, Math.floor(Math.min(pax, pbx) - rp));
    const maxC = Math.min(this.size - 1, Math.ceil(Math.max(pax, pbx) + rp));
    const minR = Math.max(0, Math.floor(Math.min(pay, pby) - rp));
    const maxR = Math.min(this.size - 1, Math.ceil(Math.max(pay, pby) + rp));
    const ex = pbx - pax;
    const ey = pby - pay;
    const len2 = ex * ex + ey * ey;
    const r2 = rp * rp;
    const r02 = rp0 > 0 ? rp0 * rp0 : -1;
    for (let row = minR; row <= maxR; row++) {
      for (let col = minC; col <= maxC; col++) {
        const px = col + 0.5 - pax;
        const py = row + 0.5 - pay;
        const t = len2 > 0 ? Math.max(0, Math.min(1, (px * ex + py * ey) / len2)) : 0;
        const dx = px - t * ex;
        const dy = py - t * ey;
        const d2 = dx * dx + dy * dy;
        if (d2 <= r2 && d2 >= r02) this.put(col, row, c);
      }
    }
  }

  disc(x: number, y: number, r: number, c: Rgb): void {
    this.capsule(x, y, x, y, r, c);
  }

  ring(x: number, y: number, inner: number, outer: number, c: Rgb): void {
    this.capsule(x, y, x, y, outer, c, inner);
  }

  /** Axis-aligned (in world) square of half-size h. */
  square(x: number, y: number, h: number, c: Rgb): void {
    const corners = [this.toPixel(x - h, y - h), this.toPixel(x + h, y + h)];
    const minC = Math.max(0, Math.floor(Math.min(corners[0]![0], corners[1]![0])));
    const maxC = Math.min(this.size - 1, Math.ceil(Math.max(corners[0]![0], corners[1]![0])));
    const minR = Math.max(0, Math.floor(Math.min(corners[0]![1], corners[1]![1])));
    const maxR = Math.min(this.size - 1, Math.ceil(Math.max(corners[0]![1], corners[1]![1])));
    const [cx, cy] = this.toPixel(x, y);
    const hp = h * this.scale;
    for (let row = minR; row <= maxR; row++) {
      for (let col = minC; col <= maxC; col++) {
        // back to the world frame's axes for the rotated camera
        const px = col + 0.5 - cx;
        const py = row + 0.5 - cy;
        const wx = px * this.cos + py * this.sin;
        const wy = -px * this.sin + py * this.cos;
        if (Math.abs(wx) <= hp && Math.abs(wy) <= hp) this.put(col, row, c);
      }
    }
  }
}

/** Draws a scene into `out` (allocated when omitted). */
export function renderScene(
  scene: Scene,
  size: number,
  appearance: Appearance = DEFAULT_APPEARANCE,
  camera: Camera = DEFAULT_CAMERA,
  out: Uint8Array = new Uint8Array(size * size * 3),
): Uint8Array {
  const r = new Raster(size, out, camera);
  r.fill(appearance.background);
  r.square(0, 0, 1, appearance.floor);
  if (scene.goal)
    r.ring(
      scene.goal[0],
      scene.goal[1],
      scene.goalRadius * 0.55,
      scene.goalRadius,
      appearance.goal,
    );
  if (scene.target) r.disc(scene.target[0], scene.target[1], scene.targetRadius, appearance.target);
  if (scene.block) r.square(scene.block[0], scene.block[1], scene.blockHalf, appearance.block);
  const j = scene.joints;
  const n = j.length / 2 - 1;
  for (let i = 0; i < n; i++) {
    r.capsule(
      j[2 * i]!,
      j[2 * i + 1]!,
      j[2 * i + 2]!,
      j[2 * i + 3]!,
      scene.linkRadius,
      appearance.arm,
    );
  }
  for (let i = 0; i < n; i++)
    r.disc(j[2 * i]!, j[2 * i + 1]!, scene.linkRadius * 1.1, appearance.joint);
  r.disc(j[2 * n]!, j[2 * n + 1]!, scene.eeRadius, appearance.joint);
  return out;
}
