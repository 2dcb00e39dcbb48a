// Runs the original face-api JavaScript implementation (tfjs 4.22.0, wasm backend) on the demo
// photos and writes its outputs as golden test vectors for the C++ port.
// Run through make_golden.sh (it decodes the photos with OpenCV first and sets NODE_PATH).
//
// usage: node make_golden.mjs MODEL_DIR OUT.json NAME=IMAGE.ppm...
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs');
const wasm = require('@tensorflow/tfjs-backend-wasm');

const [modelDir, outPath, ...images] = process.argv.slice(2);
const faceapi = require(path.join(modelDir, '..', 'dist', 'face-api.node-wasm.js'));

function readPpm(file) {
  const buf = fs.readFileSync(file);
  const header = buf.subarray(0, 64).toString('latin1').split(/\s+/);
  if (header[0] !== 'P6' || header[3] !== '255') throw new Error(`${file}: not a binary 8-bit PPM`);
  const width = Number(header[1]);
  const height = Number(header[2]);
  const offset = buf.length - width * height * 3;
  return { width, height, rgb: new Uint8Array(buf.buffer, buf.byteOffset + offset, width * height * 3) };
}

// FNV-1a (32 bit) of the RGB bytes: the C++ test checks it to be sure it decoded the same pixels.
function fnv1a32(bytes) {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 0x01000193) >>> 0;
  return h >>> 0;
}

const rect = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });

async function faceCases(img, width, height, detections) {
  const cases = [];
  for (const det of detections) {
    const crop = det.box.clipAtImageBorders(width, height);  // floors, like extractFaceTensors
    const faceTensor = tf.slice3d(img, [crop.y, crop.x, 0], [crop.height, crop.width, 3]);
    const lm = await faceapi.nets.faceLandmark68Net.detectLandmarks(faceTensor);
    faceTensor.dispose();
    const inCrop = lm.positions.map((p) => [p.x, p.y]);
    // face-api's own alignment box for the recognizer: landmarks' bounding box padded by 20 %.
    const aligned = lm.shiftBy(crop.x, crop.y).align().clipAtImageBorders(width, height);
    const alignedTensor = tf.slice3d(img, [aligned.y, aligned.x, 0], [aligned.height, aligned.width, 3]);
    const descriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(alignedTensor);
    alignedTensor.dispose();
    cases.push({
      landmark_crop: rect(crop),
      landmarks_in_crop: inCrop,
      descriptor_crop: rect(aligned),
      descriptor: Array.from(descriptor),
    });
  }
  return cases;
}

async function main() {
  wasm.setWasmPaths(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
  await tf.setBackend('wasm');
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
  await faceapi.nets.faceRecognitionNet.loadFromDisk(modelDir);

  const tinyOptions = { inputSize: 416, scoreThreshold: 0.5 };
  const ssdOptions = { minConfidence: 0.5, maxResults: 100 };
  const out = {
    generator: 'tools/golden/make_golden.mjs',
    face_api: faceapi.version,
    tfjs: tf.version_core,
    backend: tf.getBackend(),
    tiny_options: tinyOptions,
    ssd_options: ssdOptions,
    images: [],
  };
  for (const arg of images) {
    const [name, file] = arg.split('=');
    const { width, height, rgb } = readPpm(file);
    const img = tf.tensor3d(rgb, [height, width, 3], 'int32');
    const tiny = await faceapi.detectAllFaces(img, new faceapi.TinyFaceDetectorOptions(tinyOptions));
    const ssd = await faceapi.detectAllFaces(img, new faceapi.SsdMobilenetv1Options(ssdOptions));
    const entry = {
      name,
      width,
      height,
      rgb_fnv1a32: fnv1a32(rgb),
      tiny: tiny.map((d) => ({ score: d.score, box: rect(d.box) })),
      ssd: ssd.map((d) => ({ score: d.score, box: rect(d.box) })),
      faces: [...await faceCases(img, width, height, ssd), ...await faceCases(img, width, height, tiny)],
    };
    img.dispose();
    out.images.push(entry);
    console.log(`${name}: ${width}x${height}, tiny ${tiny.length}, ssd ${ssd.length} faces`);
  }
  fs.writeFileSync(outPath, `${JSON.stringify(out, null, 1)}\n`);
}

main().catch((err) => { console.error(err); process.exit(1); });
