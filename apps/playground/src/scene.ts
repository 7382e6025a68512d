// The scene drawn as vector graphics at display size from the simulator's state (not from the
// policy's 64-px camera image): links, joints, the gripper and its trail, the target (reach) or
// the block and its goal (push), in the camera's frame so it matches what the policy sees.
import { type ArmEnv, DEFAULT_CAMERA, GEOMETRY, worldToImage } from '@selfalign/sim';

export class SceneView {
  private trail: [number, number][] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {}

  clearTrail(): void {
    this.trail = [];
  }

  draw(env: ArmEnv, label = ''): void {
    const ctx = this.canvas.getContext('2d')!;
    const { width: w, height: h } = this.canvas;
    const cam = env.config.camera ?? DEFAULT_CAMERA;
    const px = (x: number, y: number): [number, number] => {
      const [u, v] = worldToImage(cam, x, y);
      return [((u + 1) / 2) * w, ((v + 1) / 2) * h];
    };
    const r = (world: number) => (world / cam.span) * w;
    ctx.fillStyle = '#f4f3ee';
    ctx.fillRect(0, 0, w, h);
    // workspace grid
    ctx.strokeStyle = '#e2e0d8';
    ctx.lineWidth = 1;
    for (let g = -1; g <= 1.001; g += 0.25) {
      const [a, b] = px(g, -1);
      const [c, d] = px(g, 1);
      ctx.beginPath();
      ctx.moveTo(a, b);
      ctx.lineTo(c, d);
      ctx.stroke();
      const [e, f] = px(-1, g);
      const [k, l] = px(1, g);
      ctx.beginPath();
      ctx.moveTo(e, f);
      ctx.lineTo(k, l);
      ctx.stroke();
    }
    const disc = (x: number, y: number, radius: number, fill: string, stroke?: string) => {
      const [cx, cy] = px(x, y);
      ctx.beginPath();
      ctx.arc(cx, cy, r(radius), 0, 2 * Math.PI);
      ctx.fillStyle = fill;
      ctx.fill();
      if (stroke) {
        ctx.strokeStyle = stroke;
        ctx.lineWidth = 2;
        ctx.stroke();
      }
    };
    if (env.task === 'reach') {
      disc(
        env.target[0],
        env.target[1],
        GEOMETRY.reachTolerance + GEOMETRY.targetRadius,
        'rgba(220,40,40,0.12)',
      );
      disc(env.target[0], env.target[1], GEOMETRY.targetRadius, '#dc2828');
    } else {
      disc(env.goal[0], env.goal[1], GEOMETRY.goalRadius, 'rgba(230,200,40,0.5)', '#c9a400');
      const [bx, by] = px(env.block[0], env.block[1]);
      const half = r(GEOMETRY.blockHalf);
      ctx.fillStyle = '#28aa3c';
      ctx.fillRect(bx - half, by - half, 2 * half, 2 * half);
    }
    // gripper trail
    const ee = env.endEffector();
    this.trail.push([ee[0], ee[1]]);
    ctx.strokeStyle = 'rgba(40,70,170,0.45)';
    ctx.lineWidth = 2;
    ctx.setLineDash([4, 4]);
    ctx.beginPath();
    this.trail.forEach(([x, y], i) => {
      const [a, b] = px(x, y);
      if (i === 0) ctx.moveTo(a, b);
      else ctx.lineTo(a, b);
    });
    ctx.stroke();
    ctx.setLineDash([]);
    // links and joints
    const j = env.jointPositions();
    ctx.strokeStyle = '#2846aa';
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.lineWidth = Math.max(4, 2 * r(GEOMETRY.linkRadius));
    ctx.beginPath();
    for (let i = 0; i < j.length; i += 2) {
      const [a, b] = px(j[i]!, j[i + 1]!);
      if (i === 0) ctx.moveTo(a, b);
      else ctx.lineTo(a, b);
    }
    ctx.stroke();
    for (let i = 0; i < j.length - 2; i += 2)
      disc(j[i]!, j[i + 1]!, GEOMETRY.linkRadius * 1.3, '#14143c');
    disc(ee[0], ee[1], GEOMETRY.eeRadius, '#14143c', '#fff');
    if (label) {
      ctx.fillStyle = '#333';
      ctx.font = '14px system-ui, sans-serif';
      ctx.fillText(label, 10, h - 12);
    }
  }
}
