// The caller's side of a browser call: microphone → WebRTC → the assistant, with live captions
// from the data channel. Plain JavaScript, no build step (telephony/webrtc/routes.py serves it).
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const LABELS = {caller: "You", assistant: "Assistant", agent: "Agent"};
  const DETAIL = {
    idle: "Ready when you are.", connecting: "Connecting…", connected: "Connected. Go ahead and speak.",
    ended: "The call has ended.", failed: "The call could not go on.",
  };
  let pc = null, channel = null, microphone = null, connectTimer = null, state = "idle";

  if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embedded");

  function setState(next, detail) {
    state = next;
    const el = $("state");
    el.dataset.state = next;
    el.textContent = next;
    $("detail").textContent = detail || DETAIL[next];
    $("call").disabled = next === "connecting" || next === "connected";
    $("hangup").disabled = !(next === "connecting" || next === "connected");
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  function microphoneProblem(error) {
    switch (error && error.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Microphone access was denied. To call us, allow this page to use your microphone " +
               "(the icon in the address bar), then press Call again.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "No microphone was found. Connect one and press Call again.";
      case "NotReadableError":
        return "Your microphone is in use by another application. Close it and press Call again.";
      default:
        return "The microphone could not be opened" + (error && error.message ? `: ${error.message}` : ".");
    }
  }

  function caption(message) {
    const list = $("captions");
    let row = list.querySelector(`[data-id="${CSS.escape(message.id)}"]`);
    if (!row) {
      row = document.createElement("li");
      row.dataset.id = message.id;
      row.className = `caption ${message.speaker}`;
      row.dataset.speaker = message.speaker;
      row.setAttribute("data-testid", "caption");
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = LABELS[message.speaker] || message.speaker;
      const text = document.createElement("span");
      text.className = "text";
      row.append(who, text);
      list.appendChild(row);
    }
    row.dataset.final = String(Boolean(message.final));
    row.querySelector(".text").textContent = message.text;
    $("no-captions").hidden = true;
    list.scrollTop = list.scrollHeight;
  }

  function onMessage(event) {
    let message;
    try { message = JSON.parse(event.data); } catch { return; }
    if (message.type === "caption") caption(message);
    else if (message.type === "call" && message.state === "connected") {
      $("reference").textContent = `Reference: ${message.call_id}`;
    } else if (message.type === "call" && message.state === "transferred") {
      setState("connected", "You are talking with one of our team.");
    } else if (message.type === "call" && message.state === "ended") finish("ended");
    else if (message.type === "signalling" && message.message && message.message.type === "peerLeft") {
      finish("ended");
    }
  }

  function cleanUp() {
    clearTimeout(connectTimer);
    if (channel) { channel.onmessage = null; channel.close(); }
    if (pc) { pc.onconnectionstatechange = null; pc.close(); }
    if (microphone) microphone.getTracks().forEach((track) => track.stop());
    pc = channel = microphone = null;
  }

  function finish(next, detail) {
    if (state === "ended" || state === "failed") return;
    cleanUp();
    setState(next, detail);
  }

  function fail(message) {
    showError(message);
    finish("failed");
  }

  // How loud what we hear is (the inbound audio's level from WebRTC's statistics): a meter that
  // shows the line is alive, and its peak for whoever checks it.
  function watchLevel(peer) {
    const meter = $("level");
    let peak = 0;
    meter.value = 0;
    const timer = setInterval(async () => {
      if (pc !== peer) { clearInterval(timer); meter.value = 0; return; }
      (await peer.getStats()).forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio" && typeof report.audioLevel === "number") {
          meter.value = report.audioLevel;
          peak = Math.max(peak, report.audioLevel);
          meter.dataset.peak = peak.toFixed(3);
        }
      });
    }, 200);
  }

  function gathered(peer, timeoutMs) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
      peer.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, timeoutMs);  // send the candidates found so far
    });
  }

  async function call() {
    showError("");
    $("captions").replaceChildren();
    $("no-captions").hidden = false;
    $("reference").textContent = "";
    state = "idle";
    setState("connecting");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      fail("Calling needs a secure page (https) and a browser with microphone support.");
      return;
    }
    try {
      microphone = await navigator.mediaDevices.getUserMedia({
        audio: {echoCancellation: true, noiseSuppression: true, autoGainControl: true},
      });
    } catch (error) {
      fail(microphoneProblem(error));
      return;
    }
    try {
      const config = await (await fetch("/call/config")).json();
      pc = new RTCPeerConnection({iceServers: config.iceServers || []});
      channel = pc.createDataChannel("iva", {ordered: true});
      channel.onmessage = onMessage;
      pc.addTransceiver(microphone.getAudioTracks()[0], {direction: "sendrecv"});
      pc.ontrack = (event) => {
        $("remote").srcObject = event.streams[0] || new MediaStream([event.track]);
      };
      pc.onconnectionstatechange = () => {
        if (!pc) return;
        if (pc.connectionState === "connected") {
          clearTimeout(connectTimer);
          if (state === "connecting") setState("connected");
        } else if (pc.connectionState === "failed") {
          fail("The connection failed. Check your network and press Call again.");
        } else if (pc.connectionState === "closed") finish("ended");
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 2000);
      const response = await fetch("/call/offer", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type}),
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        fail(answer.detail || `The service refused the call (HTTP ${response.status}).`);
        return;
      }
      if (!pc) return;  // hung up meanwhile
      await pc.setRemoteDescription({sdp: answer.sdp, type: answer.type});
      watchLevel(pc);
      connectTimer = setTimeout(() => {
        if (state === "connecting") fail("The connection could not be made. Check your network and press Call again.");
      }, 20000);
    } catch (error) {
      if (pc) fail(`The connection failed: ${error && error.message ? error.message : error}`);
    }
  }

  function hangUp() {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({type: "hangup"}));
    const peer = pc, dataChannel = channel, mic = microphone;
    pc = channel = microphone = null;  // no more events from this call
    clearTimeout(connectTimer);
    setState("ended");
    setTimeout(() => {  // let the hang-up message go out first
      if (dataChannel) dataChannel.close();
      if (peer) peer.close();
      if (mic) mic.getTracks().forEach((track) => track.stop());
    }, 200);
  }

  $("call").addEventListener("click", call);
  $("hangup").addEventListener("click", hangUp);
  window.addEventListener("pagehide", () => {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({type: "hangup"}));
  });
  setState("idle");
})();
