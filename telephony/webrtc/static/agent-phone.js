// "Answer in browser" on the agent desk (review/static/agent.html): once an agent has accepted
// the handoff of a browser call, their microphone and speaker join the call over WebRTC
// (POST /api/handoffs/{id}/webrtc/offer, signed in). The desk page tells this script which
// handoff is on screen with an "iva:handoff" event. Plain JavaScript, no build step.
(() => {
  "use strict";
  const box = document.getElementById("browser-phone");
  if (!box) return;
  box.innerHTML = `
    <div class="actions">
      <button class="primary" data-testid="answer-in-browser" type="button">Answer in browser</button>
      <button data-testid="agent-hangup" type="button" disabled>Hang up</button>
      <span class="meta">Browser call: <span data-testid="agent-call-state">idle</span></span>
      <meter data-testid="caller-level" min="0" max="1" value="0" aria-label="The caller's voice"></meter>
    </div>
    <div class="error" data-testid="agent-call-error" role="alert"></div>
    <audio autoplay></audio>`;
  const answerButton = box.querySelector("[data-testid=answer-in-browser]");
  const hangupButton = box.querySelector("[data-testid=agent-hangup]");
  const stateText = box.querySelector("[data-testid=agent-call-state]");
  const errorText = box.querySelector("[data-testid=agent-call-error]");
  const speaker = box.querySelector("audio");
  const meter = box.querySelector("[data-testid=caller-level]");
  let shown = null, call = null, state = "idle";

  function me() {
    const el = document.getElementById("me");
    return (el && el.dataset.agent) || "";
  }

  function setState(next) {
    state = next;
    stateText.textContent = next;
    render();
  }

  function render() {
    const mine = shown && shown.channel === "webrtc" && shown.accepted_by === me()
      && ["accepted", "connected"].includes(shown.status);
    const active = call && (!shown || call.handoffId === shown.id);
    box.hidden = !(mine || active);
    answerButton.disabled = Boolean(call) || !(shown && shown.status === "accepted");
    hangupButton.disabled = !call;
  }

  function close() {
    if (!call) return;
    const {pc, channel, mic} = call;
    call = null;
    setTimeout(() => {
      if (channel) channel.close();
      pc.close();
      mic.getTracks().forEach((track) => track.stop());
    }, 200);
  }

  function fail(message) {
    errorText.textContent = message;
    close();
    setState("failed");
  }

  async function answer() {
    const handoff = shown;
    errorText.textContent = "";
    setState("connecting");
    let mic;
    try {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: {echoCancellation: true, noiseSuppression: true, autoGainControl: true},
      });
    } catch (error) {
      fail(error && error.name === "NotAllowedError"
        ? "Microphone access was denied: allow it for this page to talk to the caller."
        : `The microphone could not be opened: ${error && error.message}`);
      return;
    }
    const config = await (await fetch("/call/config")).json().catch(() => ({}));
    const pc = new RTCPeerConnection({iceServers: config.iceServers || []});
    const channel = pc.createDataChannel("iva-agent", {ordered: true});
    call = {handoffId: handoff.id, pc, channel, mic};
    channel.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message.type === "signalling" && message.message && message.message.type === "peerLeft") {
        close();
        setState("ended");
      }
    };
    pc.addTransceiver(mic.getAudioTracks()[0], {direction: "sendrecv"});
    pc.ontrack = (event) => { speaker.srcObject = event.streams[0] || new MediaStream([event.track]); };
    pc.onconnectionstatechange = () => {
      if (!call || call.pc !== pc) return;
      if (pc.connectionState === "connected") setState("connected");
      else if (pc.connectionState === "failed") fail("The connection to the call failed.");
    };
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") resolve();
        pc.addEventListener("icegatheringstatechange", () => {
          if (pc.iceGatheringState === "complete") resolve();
        });
        setTimeout(resolve, 2000);
      });
      const response = await fetch(`/api/handoffs/${encodeURIComponent(handoff.id)}/webrtc/offer`, {
        method: "POST", headers: {"Content-Type": "application/json"}, credentials: "same-origin",
        body: JSON.stringify({sdp: pc.localDescription.sdp, type: pc.localDescription.type}),
      });
      const reply = await response.json().catch(() => ({}));
      if (!response.ok) {
        fail(reply.detail || `The call could not be answered (HTTP ${response.status}).`);
        return;
      }
      await pc.setRemoteDescription({sdp: reply.sdp, type: reply.type});
      watchLevel(pc);
    } catch (error) {
      fail(`The call could not be answered: ${error && error.message}`);
    }
  }

  // The caller's voice level (WebRTC statistics of the incoming audio), and its peak.
  function watchLevel(pc) {
    let peak = 0;
    const timer = setInterval(async () => {
      if (!call || call.pc !== pc) { clearInterval(timer); meter.value = 0; return; }
      (await pc.getStats()).forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio" && typeof report.audioLevel === "number") {
          meter.value = report.audioLevel;
          peak = Math.max(peak, report.audioLevel);
          meter.dataset.peak = peak.toFixed(3);
        }
      });
    }, 200);
  }

  answerButton.addEventListener("click", answer);
  hangupButton.addEventListener("click", () => {
    if (call && call.channel.readyState === "open") call.channel.send(JSON.stringify({type: "hangup"}));
    close();
    setState("ended");
  });
  document.addEventListener("iva:handoff", (event) => {
    shown = event.detail && event.detail.handoff;
    render();
  });
  render();
})();
