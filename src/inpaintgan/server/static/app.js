// inpaintgan web UI: open an image, paint a mask or select an object (POST /api/v1/segment), press
// Remove (POST /api/v1/inpaint), compare, keep editing, download. Vanilla JS + canvas, no build step.
//
// Full-resolution buffers (hidden canvases): #image-canvas holds the current image, #mask-canvas the
// painted mask (red strokes, alpha = hole), #before-canvas the image before the last Remove. The
// visible #view canvas draws them with the zoom / pan transform. History entries are
// {image, strokes, before}: strokes are replayed onto the mask, so undo / redo is cheap; an image
// is stored only when a Remove creates one. A selection is a stroke too ({select: true, canvas}: the
// object's mask, drawn over the mask). The compare view shows the result (AFTER) left of the split
// and the image before the Remove (BEFORE) right of it: the slider toward "After" shows more result.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    stage: $('stage'), view: $('view'), empty: $('empty'), dropHint: $('drop-hint'),
    fileInput: $('file-input'), openBtn: $('open-btn'), emptyOpenBtn: $('empty-open-btn'),
    brushBtn: $('brush-btn'), eraserBtn: $('eraser-btn'), selectBtn: $('select-btn'), repeatBtn: $('repeat-btn'),
    settingsBtn: $('settings-btn'), settingsPanel: $('settings-panel'), strategy: $('strategy-select'),
    blend: $('blend-select'), downloadFormat: $('download-format'), strip: $('strip'), size: $('brush-size'), sizeValue: $('brush-size-value'),
    undoBtn: $('undo-btn'), redoBtn: $('redo-btn'), clearBtn: $('clear-btn'),
    zoomIn: $('zoom-in-btn'), zoomOut: $('zoom-out-btn'), fitBtn: $('fit-btn'), zoomValue: $('zoom-value'),
    model: $('model-select'), dilate: $('dilate-select'), removeBtn: $('remove-btn'), downloadBtn: $('download-btn'),
    compare: $('compare'), compareSlider: $('compare-slider'),
    busy: $('busy'), busyText: $('busy-text'), cancelBtn: $('cancel-btn'),
    message: $('message'), messageText: $('message-text'), messageClose: $('message-close'),
    info: $('info'),
    image: $('image-canvas'), mask: $('mask-canvas'), before: $('before-canvas'),
  };
  const MASK_COLOR = 'rgb(255, 72, 72)';
  const MASK_ALPHA = 0.5;
  const HISTORY_MAX = 60;
  const API = '/api/v1';
  // what the server opens (Pillow, restricted); other formats are converted to PNG here first
  const SERVER_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/bmp', 'image/tiff', 'image/gif'];

  const ctxView = el.view.getContext('2d');
  const ctxImage = el.image.getContext('2d', { willReadFrequently: true });
  const ctxMask = el.mask.getContext('2d', { willReadFrequently: true });
  const ctxBefore = el.before.getContext('2d', { willReadFrequently: true });

  const state = {
    limits: null,
    history: [],
    index: -1,
    fileName: 'image',
    tool: 'brush',
    size: 40, // brush diameter in screen pixels
    view: { zoom: 1, x: 0, y: 0 }, // client = image * zoom + (x, y), CSS px relative to the stage
    drawing: null,
    panning: null,
    dragSplit: false,
    spaceDown: false,
    pointer: null,
    compare: { on: false, pos: 0.5 },
    request: null, // {controller, started, timer}
    lastInfo: '',
    downloadUrl: null,
    renderQueued: false,
    inputType: 'image/png', // the opened file's type: Download gives the same format
    inputQuality: 0.95, // the opened JPEG's estimated quality (0..1)
    selecting: null, // {x0, y0, x1, y1} image px while a box is dragged
    lastMask: null, // the strokes of the last Remove ("repeat last mask")
    folder: null, // serve --input: {images: [{name, saved}], output_dir}
    folderName: null, // the folder image open now (its results are saved to the output folder)
  };

  const current = () => state.history[state.index] || null;

  // --------------------------------------------------------------------------------- messages

  function showMessage(text, kind = 'error') {
    el.messageText.textContent = text;
    el.message.classList.toggle('info', kind === 'info');
    el.message.hidden = false;
  }
  function hideMessage() { el.message.hidden = true; }
  el.messageClose.addEventListener('click', hideMessage);

  function formatBytes(n) {
    if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
    if (n >= 1024) return `${Math.round(n / 1024)} KB`;
    return `${n} bytes`;
  }

  // --------------------------------------------------------------------------------- server info

  async function loadServerInfo() {
    try {
      const [health, models] = await Promise.all([
        fetch(`${API}/health`).then((r) => r.json()),
        fetch(`${API}/models`).then((r) => r.json()),
      ]);
      state.limits = health.limits;
      el.model.replaceChildren();
      for (const m of models.models) {
        const opt = document.createElement('option');
        opt.value = m.name;
        opt.textContent = m.name;
        opt.title = [`${m.method}${m.image_size ? `, ${m.image_size} px` : ''}`, m.description].filter(Boolean).join(': ');
        opt.selected = m.name === models.default;
        el.model.append(opt);
      }
      restoreSettings();
      updateSettingsSummary();
      await loadFolder();
    } catch (err) {
      showMessage(`Cannot reach the inpaintgan server (${err.message}). Is 'inpaintgan serve' running?`);
    }
  }

  // --------------------------------------------------------------------------------- opening

  async function openBlob(blob, name) {
    if (state.request) return;
    hideMessage();
    if (!blob || (blob.type && !blob.type.startsWith('image/'))) {
      showMessage(`${name || 'This file'} is not an image.`);
      return;
    }
    const limits = state.limits;
    if (limits && blob.size > limits.max_upload_bytes) {
      showMessage(`${name || 'The image'} is ${formatBytes(blob.size)}; this server accepts uploads up to ` +
        `${formatBytes(limits.max_upload_bytes)} (inpaintgan serve --max-upload-mb).`);
      return;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob);
    } catch (err) {
      showMessage(`${name || 'This file'} could not be read as an image (${err.message || err}).`);
      return;
    }
    if (limits && bitmap.width * bitmap.height > limits.max_pixels) {
      showMessage(`${name || 'The image'} is ${bitmap.width}×${bitmap.height} = ` +
        `${(bitmap.width * bitmap.height / 1e6).toFixed(1)} MP; this server accepts up to ` +
        `${(limits.max_pixels / 1e6).toFixed(0)} MP (inpaintgan serve --max-pixels).`);
      bitmap.close();
      return;
    }
    if (blob.type && !SERVER_TYPES.includes(blob.type)) {
      // a format the browser decodes but the server does not open (AVIF, HEIC, ...): send a PNG of it
      const c = document.createElement('canvas');
      c.width = bitmap.width;
      c.height = bitmap.height;
      c.getContext('2d').drawImage(bitmap, 0, 0);
      blob = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
      if (!blob || (limits && blob.size > limits.max_upload_bytes)) {
        showMessage(`${name || 'The image'} is too large for this server once converted to PNG ` +
          `(uploads up to ${formatBytes(limits ? limits.max_upload_bytes : 0)}).`);
        return;
      }
    }
    state.folderName = null;
    state.inputType = blob.type || 'image/png';
    state.inputQuality = state.inputType === 'image/jpeg' ? await jpegQuality(blob) : 0.95;
    state.lastMask = null;
    state.fileName = (name || 'image').replace(/\.[^.]*$/, '') || 'image';
    state.history = [{ image: { blob, bitmap, result: false }, strokes: [], before: null }];
    state.index = 0;
    state.compare.on = false;
    state.lastInfo = '';
    applyState();
    fitView();
  }

  el.openBtn.addEventListener('click', () => el.fileInput.click());
  el.emptyOpenBtn.addEventListener('click', () => el.fileInput.click());
  el.fileInput.addEventListener('change', () => {
    const f = el.fileInput.files[0];
    if (f) openBlob(f, f.name);
    el.fileInput.value = '';
  });

  let dragDepth = 0;
  el.stage.addEventListener('dragenter', (e) => {
    if (![...e.dataTransfer.types].includes('Files')) return;
    e.preventDefault();
    dragDepth += 1;
    el.dropHint.hidden = false;
  });
  el.stage.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; });
  el.stage.addEventListener('dragleave', () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) el.dropHint.hidden = true;
  });
  el.stage.addEventListener('drop', (e) => {
    e.preventDefault();
    dragDepth = 0;
    el.dropHint.hidden = true;
    const f = e.dataTransfer.files[0];
    if (f) openBlob(f, f.name);
  });
  document.addEventListener('paste', (e) => {
    const items = e.clipboardData ? [...e.clipboardData.items] : [];
    const item = items.find((it) => it.kind === 'file' && it.type.startsWith('image/'));
    if (!item) return;
    e.preventDefault();
    openBlob(item.getAsFile(), 'pasted');
  });

  // --------------------------------------------------------------------------------- history

  function pushState(entry) {
    state.history = state.history.slice(0, state.index + 1);
    state.history.push(entry);
    while (state.history.length > HISTORY_MAX) state.history.shift();
    state.index = state.history.length - 1;
  }

  function undo() {
    if (state.index <= 0 || state.request) return;
    state.index -= 1;
    applyState();
  }

  function redo() {
    if (state.index >= state.history.length - 1 || state.request) return;
    state.index += 1;
    applyState();
  }

  function clearMask() {
    const cur = current();
    if (!cur || !cur.strokes.length || state.request) return;
    pushState({ image: cur.image, strokes: [], before: cur.before });
    applyState();
  }

  /** Bring the buffers in line with the current history entry. */
  function applyState() {
    const cur = current();
    if (cur) {
      const { bitmap } = cur.image;
      if (el.image.width !== bitmap.width || el.image.height !== bitmap.height) {
        for (const c of [el.image, el.mask, el.before]) { c.width = bitmap.width; c.height = bitmap.height; }
      }
      ctxImage.clearRect(0, 0, el.image.width, el.image.height);
      ctxImage.drawImage(bitmap, 0, 0);
      replayStrokes(cur.strokes);
      ctxBefore.clearRect(0, 0, el.before.width, el.before.height);
      if (cur.before) ctxBefore.drawImage(cur.before, 0, 0);
      else state.compare.on = false;
    }
    updateControls();
    requestRender();
  }

  function replayStrokes(strokes) {
    ctxMask.save();
    ctxMask.globalCompositeOperation = 'source-over';
    ctxMask.clearRect(0, 0, el.mask.width, el.mask.height);
    ctxMask.restore();
    for (const s of strokes) {
      if (s.select) ctxMask.drawImage(s.canvas, 0, 0);
      else for (const [from, to] of s.batches) drawStroke(s, from, to, false);
    }
  }

  /** Draw points ``from`` .. ``to`` - 1 of a stroke onto the mask (from 0: the first dot; else the
   * segments from point ``from`` - 1 on). Strokes remember these batches, so replaying them for
   * undo / redo gives exactly the pixels painted live (anti-aliased edges included). */
  function drawStroke(stroke, from, to, record = true) {
    const pts = stroke.points;
    if (record) stroke.batches.push([from, to]);
    ctxMask.save();
    ctxMask.globalCompositeOperation = stroke.erase ? 'destination-out' : 'source-over';
    ctxMask.strokeStyle = MASK_COLOR;
    ctxMask.fillStyle = MASK_COLOR;
    ctxMask.lineWidth = stroke.width;
    ctxMask.lineCap = 'round';
    ctxMask.lineJoin = 'round';
    ctxMask.beginPath();
    if (from === 0) {
      ctxMask.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, Math.PI * 2);
      ctxMask.fill();
    } else {
      ctxMask.moveTo(pts[from - 1][0], pts[from - 1][1]);
      for (let i = from; i < to; i += 1) ctxMask.lineTo(pts[i][0], pts[i][1]);
      ctxMask.stroke();
    }
    ctxMask.restore();
  }

  function maskHasHole() {
    const cur = current();
    if (!cur || !cur.strokes.length) return false;
    if (cur.strokes.every((s) => !s.erase)) return true;
    const data = ctxMask.getImageData(0, 0, el.mask.width, el.mask.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return true;
    return false;
  }

  // --------------------------------------------------------------------------------- controls

  function updateControls() {
    const cur = current();
    const busy = Boolean(state.request);
    el.empty.hidden = Boolean(cur);
    el.undoBtn.disabled = busy || state.index <= 0;
    el.redoBtn.disabled = busy || state.index >= state.history.length - 1;
    el.clearBtn.disabled = busy || !cur || !cur.strokes.length;
    el.removeBtn.disabled = busy || !cur || !cur.strokes.length;
    el.repeatBtn.disabled = busy || !cur || !state.lastMask || cur.strokes.length > 0;
    el.compare.hidden = !(cur && cur.before && state.compare.on);
    el.compareSlider.value = String(Math.round(state.compare.pos * 1000));
    el.brushBtn.classList.toggle('active', state.tool === 'brush');
    el.eraserBtn.classList.toggle('active', state.tool === 'eraser');
    el.brushBtn.setAttribute('aria-pressed', String(state.tool === 'brush'));
    el.eraserBtn.setAttribute('aria-pressed', String(state.tool === 'eraser'));
    el.selectBtn.classList.toggle('active', state.tool === 'select');
    el.selectBtn.setAttribute('aria-pressed', String(state.tool === 'select'));
    el.size.value = String(state.size);
    el.sizeValue.textContent = String(state.size);
    el.zoomValue.textContent = `${Math.round(state.view.zoom * 100)}%`;
    const canDownload = Boolean(cur && cur.image.result) && !busy;
    el.downloadBtn.classList.toggle('disabled', !canDownload);
    el.downloadBtn.setAttribute('aria-disabled', String(!canDownload));
    if (canDownload) {
      const file = cur.image.download || { blob: cur.image.blob, ext: 'png' };
      if (!state.downloadUrl || state.downloadUrl.blob !== file.blob) {
        if (state.downloadUrl) URL.revokeObjectURL(state.downloadUrl.url);
        state.downloadUrl = { blob: file.blob, url: URL.createObjectURL(file.blob) };
      }
      el.downloadBtn.href = state.downloadUrl.url;
      el.downloadBtn.download = `${state.fileName}-inpainted.${file.ext}`;
    } else {
      el.downloadBtn.removeAttribute('href');
    }
    const size = cur ? `${cur.image.bitmap.width}×${cur.image.bitmap.height}` : '';
    el.info.textContent = [state.lastInfo, size].filter(Boolean).join(' · ');
  }

  function setTool(tool) {
    state.tool = tool;
    updateControls();
    requestRender();
  }

  function setSize(size) {
    state.size = Math.max(4, Math.min(200, Math.round(size)));
    updateControls();
    requestRender();
  }

  el.brushBtn.addEventListener('click', () => setTool('brush'));
  el.eraserBtn.addEventListener('click', () => setTool('eraser'));
  el.selectBtn.addEventListener('click', () => setTool('select'));
  el.repeatBtn.addEventListener('click', repeatMask);
  el.settingsBtn.addEventListener('click', () => toggleSettings());
  document.addEventListener('pointerdown', (e) => {
    if (!el.settingsPanel.hidden && !e.target.closest('.settings-wrap')) toggleSettings(false);
  });
  for (const sel of [el.model, el.strategy, el.blend, el.dilate, el.downloadFormat]) {
    sel.addEventListener('change', () => { saveSettings(); updateSettingsSummary(); refreshDownload(); });
  }
  el.size.addEventListener('input', () => setSize(Number(el.size.value)));
  el.undoBtn.addEventListener('click', undo);
  el.redoBtn.addEventListener('click', redo);
  el.clearBtn.addEventListener('click', clearMask);
  el.zoomIn.addEventListener('click', () => zoomAt(1.25));
  el.zoomOut.addEventListener('click', () => zoomAt(0.8));
  el.fitBtn.addEventListener('click', fitView);
  el.removeBtn.addEventListener('click', runRemove);
  el.cancelBtn.addEventListener('click', cancelRemove);
  el.compareSlider.addEventListener('input', () => {
    state.compare.pos = Number(el.compareSlider.value) / 1000;
    requestRender();
  });
  el.downloadBtn.addEventListener('click', (e) => { if (el.downloadBtn.classList.contains('disabled')) e.preventDefault(); });

  // --------------------------------------------------------------------------------- view

  function stageSize() {
    const r = el.stage.getBoundingClientRect();
    return { w: r.width, h: r.height, left: r.left, top: r.top };
  }

  function fitView() {
    const cur = current();
    if (!cur) return;
    const { w, h } = stageSize();
    const iw = cur.image.bitmap.width;
    const ih = cur.image.bitmap.height;
    const left = el.strip.hidden ? 0 : 120; // the folder's thumbnail strip
    const zoom = Math.min(4, (w - 48 - left) / iw, (h - 96) / ih);
    state.view.zoom = Math.max(0.01, zoom);
    state.view.x = left + (w - left - iw * state.view.zoom) / 2;
    state.view.y = (h - ih * state.view.zoom) / 2;
    updateControls();
    requestRender();
  }

  function zoomAt(factor, cx, cy) {
    if (!current()) return;
    const { w, h } = stageSize();
    const px = cx === undefined ? w / 2 : cx;
    const py = cy === undefined ? h / 2 : cy;
    const v = state.view;
    const zoom = Math.max(0.02, Math.min(32, v.zoom * factor));
    v.x = px - ((px - v.x) * zoom) / v.zoom;
    v.y = py - ((py - v.y) * zoom) / v.zoom;
    v.zoom = zoom;
    updateControls();
    requestRender();
  }

  function setZoom(zoom) { zoomAt(zoom / state.view.zoom); }

  /** Stage-relative CSS px -> image px. */
  function toImage(sx, sy) {
    const v = state.view;
    return [(sx - v.x) / v.zoom, (sy - v.y) / v.zoom];
  }

  function splitScreenX() {
    const cur = current();
    return state.view.x + state.compare.pos * cur.image.bitmap.width * state.view.zoom;
  }

  function requestRender() {
    if (state.renderQueued) return;
    state.renderQueued = true;
    requestAnimationFrame(() => { state.renderQueued = false; render(); });
  }

  function render() {
    const dpr = window.devicePixelRatio || 1;
    const { w, h } = stageSize();
    const cw = Math.max(1, Math.round(w * dpr));
    const ch = Math.max(1, Math.round(h * dpr));
    if (el.view.width !== cw || el.view.height !== ch) { el.view.width = cw; el.view.height = ch; }
    const ctx = ctxView;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const cur = current();
    if (!cur) return;
    const v = state.view;
    const iw = el.image.width;
    const ih = el.image.height;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    // drop shadow under the image
    ctx.save();
    ctx.shadowColor = 'rgba(0, 0, 0, 0.45)';
    ctx.shadowBlur = 24;
    ctx.shadowOffsetY = 6;
    ctx.fillStyle = '#000';
    ctx.fillRect(v.x, v.y, iw * v.zoom, ih * v.zoom);
    ctx.restore();

    ctx.save();
    ctx.translate(v.x, v.y);
    ctx.scale(v.zoom, v.zoom);
    ctx.imageSmoothingEnabled = v.zoom < 4;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(el.image, 0, 0);
    const comparing = cur.before && state.compare.on;
    if (comparing) { // the result (AFTER) left of the split, the image before the Remove (BEFORE) right of it
      ctx.save();
      ctx.beginPath();
      ctx.rect(state.compare.pos * iw, 0, iw - state.compare.pos * iw, ih);
      ctx.clip();
      ctx.drawImage(el.before, 0, 0);
      ctx.restore();
    }
    ctx.globalAlpha = MASK_ALPHA;
    ctx.drawImage(el.mask, 0, 0);
    ctx.restore();

    if (comparing) drawSplit(ctx, splitScreenX(), v.y, ih * v.zoom);
    if (state.selecting) {
      const b = state.selecting;
      const x = v.x + Math.min(b.x0, b.x1) * v.zoom;
      const y = v.y + Math.min(b.y0, b.y1) * v.zoom;
      const bw = Math.abs(b.x1 - b.x0) * v.zoom;
      const bh = Math.abs(b.y1 - b.y0) * v.zoom;
      ctx.save();
      ctx.lineWidth = 1.5;
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = '#000';
      ctx.strokeRect(x, y, bw, bh);
      ctx.lineDashOffset = 5;
      ctx.strokeStyle = '#fff';
      ctx.strokeRect(x, y, bw, bh);
      ctx.restore();
    }
    if (state.pointer && state.tool !== 'select' && !state.panning && !state.spaceDown && !state.dragSplit && !state.request && !nearSplit(state.pointer.x)) {
      const { x, y } = state.pointer;
      const r = state.size / 2;
      ctx.save();
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.6)';
      ctx.beginPath(); ctx.arc(x, y, r + 1, 0, Math.PI * 2); ctx.stroke();
      ctx.strokeStyle = state.tool === 'eraser' ? '#9fd3ff' : '#ffffff';
      ctx.beginPath(); ctx.arc(x, y, r, 0, Math.PI * 2); ctx.stroke();
      ctx.restore();
    }
  }

  function drawSplit(ctx, x, top, height) {
    ctx.save();
    ctx.strokeStyle = '#ffffff';
    ctx.lineWidth = 2;
    ctx.shadowColor = 'rgba(0, 0, 0, 0.5)';
    ctx.shadowBlur = 6;
    ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
    const cy = top + height / 2;
    ctx.fillStyle = '#ffffff';
    ctx.beginPath(); ctx.arc(x, cy, 14, 0, Math.PI * 2); ctx.fill();
    ctx.shadowBlur = 0;
    ctx.fillStyle = '#1e2128';
    ctx.beginPath(); ctx.moveTo(x - 3, cy - 5); ctx.lineTo(x - 8, cy); ctx.lineTo(x - 3, cy + 5); ctx.fill();
    ctx.beginPath(); ctx.moveTo(x + 3, cy - 5); ctx.lineTo(x + 8, cy); ctx.lineTo(x + 3, cy + 5); ctx.fill();
    ctx.font = '600 11px system-ui, sans-serif';
    ctx.textBaseline = 'top';
    const label = (text, lx) => {
      const tw = ctx.measureText(text).width;
      ctx.fillStyle = 'rgba(15, 17, 21, 0.75)';
      ctx.fillRect(lx, top + 10, tw + 12, 20);
      ctx.fillStyle = '#ffffff';
      ctx.fillText(text, lx + 6, top + 14);
      return tw + 12;
    };
    const aw = ctx.measureText('AFTER').width + 12;
    label('AFTER', x - aw - 10);
    label('BEFORE', x + 10);
    ctx.restore();
  }

  function nearSplit(sx) {
    const cur = current();
    return Boolean(cur && cur.before && state.compare.on && Math.abs(sx - splitScreenX()) < 16);
  }

  new ResizeObserver(() => requestRender()).observe(el.stage);

  // --------------------------------------------------------------------------------- pointer

  function stagePoint(e) {
    const { left, top } = stageSize();
    return { x: e.clientX - left, y: e.clientY - top };
  }

  function updateCursor() {
    const c = el.view.classList;
    c.toggle('panning', Boolean(state.panning));
    c.toggle('pan', !state.panning && state.spaceDown);
    const split = !state.panning && !state.spaceDown && state.pointer && (state.dragSplit || nearSplit(state.pointer.x));
    c.toggle('split', Boolean(split));
    c.toggle('paint', !state.panning && !state.spaceDown && !split && Boolean(current()) && state.tool !== 'select');
    c.toggle('select', !state.panning && !state.spaceDown && !split && Boolean(current()) && state.tool === 'select');
  }

  el.view.addEventListener('pointerdown', (e) => {
    const cur = current();
    if (!cur) return;
    const p = stagePoint(e);
    if (e.button === 1 || (e.button === 0 && state.spaceDown)) {
      e.preventDefault();
      state.panning = { sx: p.x, sy: p.y, vx: state.view.x, vy: state.view.y };
      el.view.setPointerCapture(e.pointerId);
      updateCursor();
      return;
    }
    if (e.button !== 0 || state.request) return;
    el.view.setPointerCapture(e.pointerId);
    if (nearSplit(p.x)) {
      state.dragSplit = true;
      return;
    }
    if (state.compare.on) { state.compare.on = false; updateControls(); }
    const [ix, iy] = toImage(p.x, p.y);
    if (state.tool === 'select') {
      state.selecting = { x0: ix, y0: iy, x1: ix, y1: iy };
      requestRender();
      return;
    }
    state.drawing = { erase: state.tool === 'eraser', width: state.size / state.view.zoom, points: [[ix, iy]], batches: [] };
    drawStroke(state.drawing, 0, 1);
    requestRender();
  });

  el.view.addEventListener('pointermove', (e) => {
    const p = stagePoint(e);
    state.pointer = p;
    if (state.panning) {
      state.view.x = state.panning.vx + p.x - state.panning.sx;
      state.view.y = state.panning.vy + p.y - state.panning.sy;
    } else if (state.dragSplit) {
      const cur = current();
      const pos = (p.x - state.view.x) / (cur.image.bitmap.width * state.view.zoom);
      state.compare.pos = Math.max(0, Math.min(1, pos));
      el.compareSlider.value = String(Math.round(state.compare.pos * 1000));
    } else if (state.selecting) {
      const [ix, iy] = toImage(p.x, p.y);
      state.selecting.x1 = ix;
      state.selecting.y1 = iy;
    } else if (state.drawing) {
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
      const n = state.drawing.points.length;
      for (const ev of events.length ? events : [e]) {
        const q = stagePoint(ev);
        state.drawing.points.push(toImage(q.x, q.y));
      }
      drawStroke(state.drawing, n, state.drawing.points.length);
    }
    updateCursor();
    requestRender();
  });

  function endPointer() {
    if (state.selecting) {
      const box = state.selecting;
      state.selecting = null;
      runSelect(box);
    }
    if (state.drawing) {
      const cur = current();
      pushState({ image: cur.image, strokes: cur.strokes.concat([state.drawing]), before: cur.before });
      state.drawing = null;
      updateControls();
    }
    state.panning = null;
    state.dragSplit = false;
    updateCursor();
    requestRender();
  }
  el.view.addEventListener('pointerup', endPointer);
  el.view.addEventListener('pointercancel', endPointer);
  el.view.addEventListener('pointerleave', () => { state.pointer = null; requestRender(); });
  el.view.addEventListener('contextmenu', (e) => e.preventDefault());

  el.view.addEventListener('wheel', (e) => {
    if (!current()) return;
    e.preventDefault();
    const p = stagePoint(e);
    const delta = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
    zoomAt(Math.exp(-delta * 0.0015), p.x, p.y);
  }, { passive: false });

  // --------------------------------------------------------------------------------- remove

  /** An opaque black canvas of the mask's size and its 2-D context (what the server reads as "keep"). */
  function blackMaskCanvas() {
    const c = document.createElement('canvas');
    c.width = el.mask.width;
    c.height = el.mask.height;
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, c.width, c.height);
    return [c, ctx];
  }

  async function exportMask() {
    const [c, ctx] = blackMaskCanvas();
    ctx.drawImage(el.mask, 0, 0);
    return new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('mask encoding failed'))), 'image/png'));
  }

  async function errorText(res) {
    let text = `the server answered ${res.status} ${res.statusText}`;
    try {
      const data = await res.json();
      if (data && data.message) text = data.message;
    } catch (_) { /* not JSON */ }
    if (res.status === 503) {
      const wait = res.headers.get('Retry-After');
      return `The server is busy${wait ? `; try again in ${wait} s` : ''}. (${text})`;
    }
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function setBusy(on, label = 'Removing') {
    if (on) {
      const started = performance.now();
      const tick = () => {
        el.busyText.textContent = `${label}… ${((performance.now() - started) / 1000).toFixed(1)} s`;
      };
      tick();
      state.request = { controller: new AbortController(), started, timer: setInterval(tick, 100) };
      el.busy.hidden = false;
    } else if (state.request) {
      clearInterval(state.request.timer);
      state.request = null;
      el.busy.hidden = true;
    }
    updateControls();
    updateCursor();
    requestRender();
  }

  function cancelRemove() {
    if (state.request) state.request.controller.abort();
  }

  async function runRemove() {
    const cur = current();
    if (!cur || state.request) return;
    hideMessage();
    if (!maskHasHole()) {
      showMessage('Paint over what should be removed first (B: brush), or select it (S: drag a box around it).', 'info');
      return;
    }
    const maskBlob = await exportMask();
    const limits = state.limits;
    if (limits && cur.image.blob.size + maskBlob.size > limits.max_upload_bytes) {
      showMessage(`The image and its mask are ${formatBytes(cur.image.blob.size + maskBlob.size)}; this server ` +
        `accepts uploads up to ${formatBytes(limits.max_upload_bytes)} (inpaintgan serve --max-upload-mb).`);
      return;
    }
    const body = new FormData();
    body.append('image', cur.image.blob, cur.image.result ? 'image.png' : 'image');
    body.append('mask', maskBlob, 'mask.png');
    if (el.model.value) body.append('model', el.model.value);
    body.append('strategy', el.strategy.value);
    body.append('blend', el.blend.value);
    body.append('dilate', el.dilate.value);
    body.append('format', 'png'); // lossless while editing; Download converts to the input's format
    setBusy(true);
    const { controller, started } = state.request;
    try {
      const res = await fetch(`${API}/inpaint`, { method: 'POST', body, signal: controller.signal });
      if (!res.ok) {
        showMessage(await errorText(res));
        return;
      }
      const blob = await res.blob();
      const bitmap = await createImageBitmap(blob);
      const image = { blob, bitmap, result: true };
      image.download = await downloadFile(image);
      state.lastMask = cur.strokes;
      pushState({ image, strokes: [], before: cur.image.bitmap });
      state.compare = { on: true, pos: 0.5 };
      const model = res.headers.get('X-Inpaint-Model') || el.model.value;
      state.lastInfo = `${model}: filled in ${((performance.now() - started) / 1000).toFixed(1)} s`;
      applyState();
      if (state.folderName) await saveToFolder(state.folderName, blob);
    } catch (err) {
      if (err.name === 'AbortError') showMessage('Cancelled.', 'info');
      else showMessage(`The request failed: ${err.message || err}. Is the server still running?`);
    } finally {
      setBusy(false);
    }
  }

  // --------------------------------------------------------------------------------- select

  /** Canvas of the strokes of one kind (``erase``), opaque white, or null when there are none. */
  function strokesCanvas(strokes, erase) {
    const list = strokes.filter((s) => !s.select && Boolean(s.erase) === erase);
    if (!list.length) return null;
    const [c, ctx] = blackMaskCanvas();
    ctx.strokeStyle = ctx.fillStyle = '#fff';
    ctx.lineCap = ctx.lineJoin = 'round';
    for (const s of list) {
      ctx.lineWidth = s.width;
      ctx.beginPath();
      ctx.arc(s.points[0][0], s.points[0][1], s.width / 2, 0, Math.PI * 2);
      ctx.fill();
      ctx.beginPath();
      ctx.moveTo(s.points[0][0], s.points[0][1]);
      for (const [x, y] of s.points.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
    return c;
  }

  const toPng = (c) => new Promise((resolve, reject) => c.toBlob((b) => (b ? resolve(b) : reject(new Error('encoding failed'))), 'image/png'));

  /** Select the object in ``box`` (image px; a click = a box around the point with an object mark
   * there): brush strokes mark object, eraser strokes background; the mask is added as a stroke. */
  async function runSelect(box) {
    const cur = current();
    if (!cur || state.request) return;
    hideMessage();
    const iw = el.image.width;
    const ih = el.image.height;
    let x0 = Math.min(box.x0, box.x1);
    let y0 = Math.min(box.y0, box.y1);
    let x1 = Math.max(box.x0, box.x1);
    let y1 = Math.max(box.y0, box.y1);
    let clickMark = null;
    if (x1 - x0 < 4 && y1 - y0 < 4) { // a click: a box of 90% of the short side around it, an object mark
      // at the point (on synthetic scenes this finds the object with IoU 0.99; a 40% box missed large ones)
      const r = Math.max(8, 0.45 * Math.min(iw, ih));
      clickMark = [x0, y0, Math.max(2, Math.min(iw, ih) / 100)];
      [x0, y0, x1, y1] = [x0 - r, y0 - r, x0 + r, y0 + r];
    }
    x0 = Math.max(0, Math.floor(x0)); y0 = Math.max(0, Math.floor(y0));
    x1 = Math.min(iw, Math.ceil(x1)); y1 = Math.min(ih, Math.ceil(y1));
    if (x1 - x0 < 2 || y1 - y0 < 2) {
      showMessage('Drag a box around the object inside the image (S: select).', 'info');
      return;
    }
    const body = new FormData();
    body.append('image', cur.image.blob, cur.image.result ? 'image.png' : 'image');
    body.append('box', `${x0},${y0},${x1},${y1}`);
    let objectCanvas = strokesCanvas(cur.strokes, false);
    if (clickMark) {
      if (!objectCanvas) objectCanvas = strokesCanvas([{ points: [clickMark.slice(0, 2)], width: 2 * clickMark[2] }], false);
      else {
        const ctx = objectCanvas.getContext('2d');
        ctx.fillStyle = '#fff';
        ctx.beginPath(); ctx.arc(clickMark[0], clickMark[1], clickMark[2], 0, Math.PI * 2); ctx.fill();
      }
    }
    const backgroundCanvas = strokesCanvas(cur.strokes, true);
    if (objectCanvas) body.append('object', await toPng(objectCanvas), 'object.png');
    if (backgroundCanvas) body.append('background', await toPng(backgroundCanvas), 'background.png');
    setBusy(true, 'Selecting');
    const { controller } = state.request;
    try {
      const res = await fetch(`${API}/segment`, { method: 'POST', body, signal: controller.signal });
      if (!res.ok) {
        showMessage(await errorText(res));
        return;
      }
      const bitmap = await createImageBitmap(await res.blob());
      const c = document.createElement('canvas');
      c.width = bitmap.width;
      c.height = bitmap.height;
      const ctx = c.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(bitmap, 0, 0);
      const px = ctx.getImageData(0, 0, c.width, c.height);
      let n = 0;
      const [r, g, b] = MASK_COLOR.match(/\d+/g).map(Number);
      for (let i = 0; i < px.data.length; i += 4) {
        const on = px.data[i] >= 128;
        n += on;
        px.data[i] = r; px.data[i + 1] = g; px.data[i + 2] = b; px.data[i + 3] = on ? 255 : 0;
      }
      if (!n) {
        showMessage('Nothing was selected in that box: draw it closer around the object, or paint it.', 'info');
        return;
      }
      ctx.putImageData(px, 0, 0);
      pushState({ image: cur.image, strokes: cur.strokes.concat([{ select: true, canvas: c, box: [x0, y0, x1, y1] }]), before: cur.before });
      state.lastInfo = `selected ${n} px`;
      applyState();
    } catch (err) {
      if (err.name === 'AbortError') showMessage('Cancelled.', 'info');
      else showMessage(`The request failed: ${err.message || err}. Is the server still running?`);
    } finally {
      setBusy(false);
    }
  }

  /** Put the mask of the last Remove on the current image again. */
  function repeatMask() {
    const cur = current();
    if (!cur || !state.lastMask || state.request || cur.strokes.length) return;
    pushState({ image: cur.image, strokes: state.lastMask, before: cur.before });
    state.compare.on = false;
    applyState();
  }

  // --------------------------------------------------------------------------------- folder

  /** serve --input: a strip of thumbnails; a click opens the photo, each Remove saves its result. */
  async function loadFolder() {
    const info = await fetch(`${API}/folder`).then((r) => r.json());
    if (!info.enabled) return;
    state.folder = info;
    el.strip.replaceChildren();
    for (const img of info.images) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.name = img.name;
      b.title = img.name;
      b.classList.toggle('saved', img.saved);
      const t = document.createElement('img');
      t.alt = img.name;
      t.src = `${API}/folder/thumb/${encodeURIComponent(img.name)}`;
      b.append(t);
      b.addEventListener('click', () => openFromFolder(img.name));
      el.strip.append(b);
    }
    el.strip.hidden = false;
  }

  async function openFromFolder(name) {
    if (state.request) return;
    try {
      const res = await fetch(`${API}/folder/image/${encodeURIComponent(name)}`);
      if (!res.ok) { showMessage(await errorText(res)); return; }
      await openBlob(await res.blob(), name);
      state.folderName = name;
      for (const b of el.strip.children) b.classList.toggle('current', b.dataset.name === name);
    } catch (err) {
      showMessage(`Cannot open ${name}: ${err.message || err}`);
    }
  }

  async function saveToFolder(name, blob) {
    const body = new FormData();
    body.append('image', blob, 'result.png');
    try {
      const res = await fetch(`${API}/folder/save/${encodeURIComponent(name)}`, { method: 'POST', body });
      if (!res.ok) { showMessage(`Not saved: ${await errorText(res)}`); return; }
      const data = await res.json();
      state.lastInfo += ` · saved ${data.name} to the output folder`;
      for (const b of el.strip.children) if (b.dataset.name === name) b.classList.add('saved');
      updateControls();
    } catch (err) {
      showMessage(`Not saved: ${err.message || err}`);
    }
  }

  // --------------------------------------------------------------------------------- settings

  const SETTINGS_KEY = 'inpaintgan.settings';

  function toggleSettings(open) {
    const show = open === undefined ? el.settingsPanel.hidden : open;
    el.settingsPanel.hidden = !show;
    el.settingsBtn.setAttribute('aria-expanded', String(show));
  }

  function saveSettings() {
    try {
      localStorage.setItem(SETTINGS_KEY, JSON.stringify({
        model: el.model.value, strategy: el.strategy.value, blend: el.blend.value,
        dilate: el.dilate.value, downloadFormat: el.downloadFormat.value,
      }));
    } catch (_) { /* storage unavailable */ }
  }

  function restoreSettings() {
    let saved = null;
    try { saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || 'null'); } catch (_) { saved = null; }
    if (!saved) return;
    const set = (sel, v) => { if (v !== undefined && [...sel.options].some((o) => o.value === v)) sel.value = v; };
    set(el.model, saved.model);
    set(el.strategy, saved.strategy);
    set(el.blend, saved.blend);
    set(el.dilate, saved.dilate);
    set(el.downloadFormat, saved.downloadFormat);
  }

  function updateSettingsSummary() {
    const parts = [el.model.value || 'model', el.strategy.value];
    if (el.blend.value !== 'none') parts.push(el.blend.value);
    if (el.dilate.value !== '0') parts.push(`+${el.dilate.value}px`);
    el.settingsBtn.querySelector('#settings-summary').textContent = parts.join(' · ');
  }

  // --------------------------------------------------------------------------------- download

  /** The quality of a JPEG (0..1), estimated from its luminance quantisation table (IJG scaling). */
  async function jpegQuality(blob) {
    const STD = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
      49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99];
    try {
      const b = new Uint8Array(await blob.slice(0, Math.min(blob.size, 1 << 18)).arrayBuffer());
      for (let i = 2; i + 4 < b.length;) {
        if (b[i] !== 0xff) break;
        const marker = b[i + 1];
        const len = (b[i + 2] << 8) | b[i + 3];
        if (marker === 0xdb && (b[i + 4] & 0x0f) === 0) { // DQT, table 0 (luminance)
          const sixteen = b[i + 4] >> 4;
          let sum = 0;
          for (let k = 0; k < 64; k += 1) sum += sixteen ? (b[i + 5 + 2 * k] << 8) | b[i + 6 + 2 * k] : b[i + 5 + k];
          const scale = (sum * 100) / STD.reduce((a, v) => a + v, 0);
          const q = scale <= 100 ? (200 - scale) / 2 : 5000 / scale;
          return Math.max(0.01, Math.min(1, Math.round(q) / 100));
        }
        if (marker === 0xda) break; // start of scan: no table before it
        i += 2 + len;
      }
    } catch (_) { /* not parseable: the default */ }
    return 0.95;
  }

  /** The file Download gives for a result: the input's format (or the chosen one). */
  async function downloadFile(image) {
    const choice = el.downloadFormat.value;
    const type = choice === 'png' ? 'image/png' : choice === 'jpeg' ? 'image/jpeg'
      : ['image/jpeg', 'image/webp'].includes(state.inputType) ? state.inputType : 'image/png';
    if (type === 'image/png') return { blob: image.blob, ext: 'png' };
    const c = document.createElement('canvas');
    c.width = image.bitmap.width;
    c.height = image.bitmap.height;
    c.getContext('2d').drawImage(image.bitmap, 0, 0);
    const quality = type === 'image/jpeg' && state.inputType === 'image/jpeg' ? state.inputQuality : 0.95;
    const blob = await new Promise((resolve) => c.toBlob(resolve, type, quality));
    if (!blob || blob.type !== type) return { blob: image.blob, ext: 'png' }; // this browser cannot encode it
    return { blob, ext: type === 'image/jpeg' ? 'jpg' : 'webp' };
  }

  async function refreshDownload() {
    const cur = current();
    if (!cur || !cur.image.result) return;
    cur.image.download = await downloadFile(cur.image);
    updateControls();
  }

  // --------------------------------------------------------------------------------- keyboard

  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const typing = t instanceof HTMLElement && (t.tagName === 'SELECT' || t.tagName === 'TEXTAREA' ||
      (t.tagName === 'INPUT' && !['range', 'file', 'button'].includes(t.type)));
    if (typing) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    let handled = true;
    if (mod && key === 'z' && !e.shiftKey) undo();
    else if (mod && ((key === 'z' && e.shiftKey) || key === 'y')) redo();
    else if (mod && key === 's') el.downloadBtn.click();
    else if (mod && key === 'o') el.fileInput.click();
    else if (mod || e.altKey) handled = false;
    else if (key === 'b') setTool('brush');
    else if (key === 'e') setTool('eraser');
    else if (key === 's') setTool('select');
    else if (key === 'r') repeatMask();
    else if (key === '+' || key === '=' || key === ']') setSize(state.size * 1.2 + 1);
    else if (key === '-' || key === '_' || key === '[') setSize(state.size / 1.2 - 1);
    else if (key === 'Enter') runRemove();
    else if (key === 'Escape') {
      if (state.request) cancelRemove();
      else if (!el.settingsPanel.hidden) toggleSettings(false);
      else hideMessage();
    }
    else if (key === 'c') {
      const cur = current();
      if (cur && cur.before) { state.compare.on = !state.compare.on; updateControls(); requestRender(); }
    } else if (key === '0') fitView();
    else if (key === '1') setZoom(1);
    else if (key === 'o') el.fileInput.click();
    else if (key === 'Delete' || key === 'Backspace') clearMask();
    else if (key === ' ') { if (!state.spaceDown) { state.spaceDown = true; updateCursor(); requestRender(); } }
    else handled = false;
    if (handled) e.preventDefault();
  });
  document.addEventListener('keyup', (e) => {
    if (e.key === ' ') { state.spaceDown = false; updateCursor(); requestRender(); }
  });
  window.addEventListener('blur', () => { state.spaceDown = false; updateCursor(); });

  // --------------------------------------------------------------------------------- start

  // A small hook for tests and for the curious: read-only views of the state.
  window.inpaintgan = {
    state,
    ready: loadServerInfo(),
    imageToClient(x, y) {
      const { left, top } = stageSize();
      return [left + state.view.x + x * state.view.zoom, top + state.view.y + y * state.view.zoom];
    },
    openBlob,
    openFromFolder,
  };
  updateControls();
  requestRender();
})();
