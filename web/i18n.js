// Every user-visible string of the web app, one table per language (issue 9: English and
// Simplified Chinese). t(key, {vars}) in lib.js looks them up; {name} is replaced.
// Sections per page; each page uses its own key prefix (term_, ev_, ph_, adm_, map_).
export const STRINGS = {
  en: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "Log in", user: "User", password: "Password", login: "Log in",
    logout: "Log out", bad_login: "Wrong user name or password.",
    too_many: "Too many failed logins; try again in {s} s.", unreachable: "The server cannot be reached.",
    session_ended: "Your session has ended; please log in again.",
    http_error: "The server answered {status}.", page_failed: "This page failed: {msg}",
    not_found: "No such page", forbidden: "This page is for administrators.",
    skip: "Skip to content", loading: "Loading…", none: "—",
    role_viewer: "viewer", role_operator: "operator", role_admin: "admin",
    nav_fleet: "Fleet", nav_events: "Events", nav_phase: "Phase", nav_admin: "Admin",
    live: "live", reconnecting: "reconnecting…", offline_app: "offline: showing the last known state",
    ago_s: "{n} s ago", ago_min: "{n} min ago", ago_h: "{n} h ago", ago_d: "{n} d ago",
    todo_page: "This page is not built yet.",

    // ---- fleet page (page-fleet.js) ----
    fleet: "Fleet", online: "online", offline: "offline", with_events: "with open events",
    id: "Terminal", name: "Name", state: "State", last_seen: "Last data", rsrp: "Signal",
    supply: "Supply", temperature: "Temperature", time_q: "Time", buffered: "Buffered",
    analysis: "Analysis", behind: "behind", ok: "ok", events_open: "Open events",
    analysis_delay: "results {s} s after the samples",
    tq_none: "unknown", tq_gps: "GPS locked", tq_net: "network synced", tq_free: "free running",
    sats: "{n} sats", search: "Search", search_hint: "id or name", show: "Show",
    filter_all: "all", filter_online: "online", filter_offline: "offline", filter_events: "with open events",
    no_match: "No terminal matches the search or filter.", map: "Map of terminal locations",
    empty: "No terminals yet: an admin adds them on the Admin page or with `gridsense terminal add`.",

    // ---- terminal page (page-terminal.js) ----
    term_title: "Terminal {id}", term_since: "online since", term_last: "last data", term_fw: "firmware",
    term_ch: "channels", term_tabs: "Terminal views", term_tab_live: "Live", term_tab_trends: "Trends",
    term_tab_status: "Status", term_tab_events: "Events", term_tab_commands: "Commands",
    // (live tab: term-live.js, keys tl_)
    tl_hold: "Hold", tl_held: "Held: the scope, phasors, spectrum and values are frozen; press Hold again to resume.", tl_side: "Values on the", tl_secondary: "secondary side", tl_primary: "primary side",
    tl_ratios: "(VT ratio {vt} and CT ratio {ct})", tl_ratio_none: "(no VT/CT ratio provisioned: primary equals secondary)",
    tl_stats: "drawn {fps} frames/s, {ms} ms each", tl_lost: "{n} waveform frames dropped by the server (slow link)",
    tl_offline_last: "The terminal is offline: these are the last known values, from", tl_offline_never: "The terminal is offline and has sent no values since the server started.",
    tl_values: "Latest values", tl_general: "System", tl_freq: "Frequency", tl_rocof: "ROCOF",
    tl_unb_uz: "Voltage unbalance u0 (zero sequence)", tl_unb_un: "Voltage unbalance u2 (negative sequence)",
    tl_unb_iz: "Current unbalance i0 (zero sequence)", tl_unb_in: "Current unbalance i2 (negative sequence)",
    tl_ll: "Line-to-line RMS {name}", tl_window: "Window", tl_flags: "Flags", tl_flags_none: "none",
    tl_flag_event: "event (dip/swell/interruption)", tl_flag_freq_held: "frequency held", tl_flag_no_rocof: "no ROCOF",
    tl_flag_time_unsync: "terminal clock not GPS-locked", tl_flag_resync: "resynchronised at a 10-min tick", tl_flag_restart: "restart",
    tl_per_channel: "Per channel", tl_channel: "Channel", tl_rms: "RMS", tl_fund: "Fundamental", tl_thd: "THD", tl_dc: "DC",
    tl_power: "Power", tl_no_power: "No power values (they need voltages and currents of the same phases).",
    tl_phase: "Phase", tl_p: "P (active)", tl_q: "Q (reactive)", tl_s: "S (apparent)", tl_pf: "PF", tl_total: "Total", tl_s_eff: "(effective)",
    tl_scope: "Oscilloscope", tl_channels: "Channels shown", tl_scope_v: "Voltage waveforms", tl_scope_a: "Current waveforms",
    tl_scope_note: "Latest frame (up to 2 cycles, up to 10 frames a second), triggered on UTC: 0 ms is the start of a nominal {hz} Hz cycle, the phasor angle reference. Drag or pinch to zoom the time axis, double-click or double-tap to reset.",
    tl_frame: "Frame of", tl_ms_axis: "ms since the UTC cycle start",
    tl_wait_frames: "Waiting for waveform frames from the terminal…", tl_no_frames_offline: "No live waveform: the terminal is offline.",
    tl_phasors: "Phasors", tl_ref: "Angle reference", tl_ref_utc: "UTC (nominal-frequency cosine)", tl_ref_ua: "Ua (angles relative to Ua)",
    tl_ref_note_utc: "Angles: UTC-referenced cosine at nominal frequency ({hz} Hz); 0° points right, positive angles counter-clockwise.",
    tl_ref_note_ua: "Angles relative to Ua (Ua at 0°); 0° points right, positive angles counter-clockwise.",
    tl_ph_scale: "Voltages and currents are scaled separately: outer circle {v}; dashed circle {i}.",
    tl_ph_report: "Synchrophasor report of", tl_ph_window: "Analysis window centred at",
    tl_phasor_title: "Phasor diagram of the voltages (solid) and currents (dashed)", tl_mag: "Magnitude", tl_angle: "Angle", tl_pos_u: "U₁ positive sequence", tl_pos_i: "I₁ positive sequence",
    tl_spectrum: "Harmonic spectrum", tl_scale: "Scale", tl_lin: "linear", tl_log: "logarithmic",
    tl_spec_title: "Harmonic orders 2 and up of {ch} in % of the fundamental", tl_pct_axis_lin: "% of fundamental",
    tl_pct_axis_log: "% of fundamental (log)", tl_order_axis: "harmonic order", tl_thd_of: "THD of {ch}:",
    tl_orders: "orders 2 to {max}", tl_spec_numbers: "Values per order", tl_order: "Order", tl_pct_fund: "% of fundamental",
    tl_no_harmonics: "No harmonic values in the latest window.",
    tl_no_analysis: "No analysis values for this terminal: the server runs without analysis (--no-analysis) or has not analysed a window of it yet (it needs the terminal online and streaming). The oscilloscope still shows the live waveform.",

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of en ----
  },
  zh: {
    // ---- shell and login (app.js, lib.js) ----
    login_title: "登录", user: "用户名", password: "密码", login: "登录",
    logout: "退出", bad_login: "用户名或密码错误。",
    too_many: "登录失败次数过多，请在 {s} 秒后重试。", unreachable: "无法连接服务器。",
    session_ended: "会话已结束，请重新登录。",
    http_error: "服务器返回 {status}。", page_failed: "页面出错：{msg}",
    not_found: "页面不存在", forbidden: "此页面仅供管理员使用。",
    skip: "跳到正文", loading: "加载中…", none: "—",
    role_viewer: "查看者", role_operator: "操作员", role_admin: "管理员",
    nav_fleet: "终端总览", nav_events: "事件", nav_phase: "相角", nav_admin: "管理",
    live: "实时", reconnecting: "正在重连…", offline_app: "离线：显示最后已知状态",
    ago_s: "{n} 秒前", ago_min: "{n} 分钟前", ago_h: "{n} 小时前", ago_d: "{n} 天前",
    todo_page: "此页面尚未完成。",

    // ---- fleet page (page-fleet.js) ----
    fleet: "终端总览", online: "在线", offline: "离线", with_events: "有未确认事件",
    id: "终端", name: "名称", state: "状态", last_seen: "最近数据", rsrp: "信号",
    supply: "供电", temperature: "温度", time_q: "时间", buffered: "缓存块",
    analysis: "分析", behind: "滞后", ok: "正常", events_open: "未确认事件",
    analysis_delay: "结果比采样晚 {s} 秒",
    tq_none: "未知", tq_gps: "GPS 锁定", tq_net: "网络同步", tq_free: "自由运行",
    sats: "{n} 颗卫星", search: "搜索", search_hint: "编号或名称", show: "显示",
    filter_all: "全部", filter_online: "在线", filter_offline: "离线", filter_events: "有未确认事件",
    no_match: "没有符合搜索或筛选条件的终端。", map: "终端位置地图",
    empty: "还没有终端：管理员可在“管理”页面或用 `gridsense terminal add` 添加。",

    // ---- terminal page (page-terminal.js) ----
    term_title: "终端 {id}", term_since: "在线自", term_last: "最近数据", term_fw: "固件",
    term_ch: "通道", term_tabs: "终端视图", term_tab_live: "实时", term_tab_trends: "趋势",
    term_tab_status: "状态", term_tab_events: "事件", term_tab_commands: "命令",
    // (live tab: term-live.js, keys tl_)
    tl_hold: "冻结", tl_held: "已冻结：示波器、相量、频谱和数值暂停更新；再按“冻结”继续。", tl_side: "数值取自", tl_secondary: "二次侧", tl_primary: "一次侧",
    tl_ratios: "（PT 变比 {vt}，CT 变比 {ct}）", tl_ratio_none: "（未设置 PT/CT 变比：一次侧等于二次侧）",
    tl_stats: "绘制 {fps} 帧/秒，每帧 {ms} ms", tl_lost: "服务器丢弃了 {n} 个波形帧（链路较慢）",
    tl_offline_last: "终端离线：以下为最后已知数值，时间", tl_offline_never: "终端离线，服务器启动以来未收到其数值。",
    tl_values: "最新数值", tl_general: "系统", tl_freq: "频率", tl_rocof: "频率变化率",
    tl_unb_uz: "电压不平衡度 u0（零序）", tl_unb_un: "电压不平衡度 u2（负序）",
    tl_unb_iz: "电流不平衡度 i0（零序）", tl_unb_in: "电流不平衡度 i2（负序）",
    tl_ll: "线电压有效值 {name}", tl_window: "时间窗", tl_flags: "标志", tl_flags_none: "无",
    tl_flag_event: "事件（暂降/暂升/中断）", tl_flag_freq_held: "频率保持", tl_flag_no_rocof: "无频率变化率",
    tl_flag_time_unsync: "终端时钟未锁定 GPS", tl_flag_resync: "在 10 分钟整点重新同步", tl_flag_restart: "重新开始",
    tl_per_channel: "各通道", tl_channel: "通道", tl_rms: "有效值", tl_fund: "基波", tl_thd: "总谐波畸变率", tl_dc: "直流分量",
    tl_power: "功率", tl_no_power: "无功率数值（需要同相的电压和电流）。",
    tl_phase: "相", tl_p: "P（有功）", tl_q: "Q（无功）", tl_s: "S（视在）", tl_pf: "功率因数", tl_total: "合计", tl_s_eff: "（等效）",
    tl_scope: "示波器", tl_channels: "显示的通道", tl_scope_v: "电压波形", tl_scope_a: "电流波形",
    tl_scope_note: "最新一帧（最多 2 个周波，每秒最多 10 帧），以 UTC 触发：0 ms 为额定 {hz} Hz 周波的起点，即相量角度的参考。拖动或双指缩放时间轴，双击或轻点两下复位。",
    tl_frame: "帧时间", tl_ms_axis: "自 UTC 周波起点的 ms",
    tl_wait_frames: "正在等待终端的波形帧…", tl_no_frames_offline: "无实时波形：终端离线。",
    tl_phasors: "相量", tl_ref: "角度参考", tl_ref_utc: "UTC（额定频率余弦）", tl_ref_ua: "Ua（相对 Ua 的角度）",
    tl_ref_note_utc: "角度：以 UTC 为参考的额定频率（{hz} Hz）余弦；0° 向右，正角度为逆时针。",
    tl_ref_note_ua: "相对 Ua 的角度（Ua 为 0°）；0° 向右，正角度为逆时针。",
    tl_ph_scale: "电压与电流分别缩放：外圆 {v}，虚线圆 {i}。",
    tl_ph_report: "同步相量报告时间", tl_ph_window: "分析时间窗中心",
    tl_phasor_title: "电压（实线）与电流（虚线）相量图", tl_mag: "幅值", tl_angle: "角度", tl_pos_u: "U₁ 正序", tl_pos_i: "I₁ 正序",
    tl_spectrum: "谐波频谱", tl_scale: "刻度", tl_lin: "线性", tl_log: "对数",
    tl_spec_title: "{ch} 的 2 次及以上谐波，占基波的百分比", tl_pct_axis_lin: "占基波 %",
    tl_pct_axis_log: "占基波 %（对数）", tl_order_axis: "谐波次数", tl_thd_of: "{ch} 的总谐波畸变率：",
    tl_orders: "第 2 至 {max} 次", tl_spec_numbers: "各次谐波数值", tl_order: "次数", tl_pct_fund: "占基波 %",
    tl_no_harmonics: "最新时间窗中没有谐波数值。",
    tl_no_analysis: "此终端没有分析数值：服务器未启用分析（--no-analysis），或尚未分析过它的时间窗（需要终端在线并传送波形）。示波器仍显示实时波形。",

    // ---- terminal history tabs (term-history.js, keys th_) ----

    // ---- events page (page-events.js) ----

    // ---- phase page (page-phase.js) ----

    // ---- admin pages (page-admin.js) ----

    // ---- map (map.js) ----

    // ---- end of zh ----
  },
};
