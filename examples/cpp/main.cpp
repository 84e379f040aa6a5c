// attnseg_infer: an attnseg IR in a C++17 application (OpenVINO C++ API + OpenCV).
//
//   attnseg_infer MODEL INPUT -o OUT [-d DEVICE] [--inference-precision P] [--max-frames N]
//
// MODEL is model.xml (or its folder); INPUT an image, a folder of images, a video file or a camera
// index. Everything the model needs is read from the IR's own description, rt_info["attnseg"]["json"]
// (the schema of src/attnseg/metadata.py, version-checked): input size and layout, embedded or
// explicit normalization, resize policy (stretch | letterbox), output kind, threshold and classes.
// Writes seg-infer's layout: OUT/masks/<image stem>.png (video: frame_NNNNNN.png) with the same pixel
// values (binary models 0/255, multiclass class ids), then prints a benchmark_app-style latency line.
// Pre- and postprocessing follow attnseg.runtime (preprocess.py, postprocess.py, resize_policy.py).

#include <openvino/openvino.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kSchemaVersion = 2;  // attnseg.metadata.SCHEMA_VERSION this example reads

// ------------------------------------------------------------------------------------ metadata
struct Metadata {
    std::string task = "binary", output = "logits", layout = "NCHW", resize_policy = "stretch";
    std::string interpolation = "area";  // input_interpolation; absent in older IRs, which mean area
    std::string input_name = "image", channel_order = "RGB";
    std::vector<std::string> classes;
    std::vector<float> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};
    float pixel_scale = 255.f, threshold = 0.5f;
    bool embedded = false;
    int divisor = 16;
};

// A field at the top level, or (schema 1) inside "extra".
static const json* field(const json& d, const char* key) {
    if (d.contains(key) && !d[key].is_null()) return &d[key];
    if (d.contains("extra") && d["extra"].is_object() && d["extra"].contains(key) && !d["extra"][key].is_null())
        return &d["extra"][key];
    return nullptr;
}

static Metadata read_metadata(const std::shared_ptr<ov::Model>& model, const fs::path& xml) {
    std::string text;
    if (model->has_rt_info("attnseg", "json")) {
        text = model->get_rt_info<std::string>("attnseg", "json");
    } else if (fs::exists(fs::path(xml).replace_extension(".json"))) {  // the JSON twin export writes
        std::ifstream in(fs::path(xml).replace_extension(".json"));
        text.assign(std::istreambuf_iterator<char>(in), {});
    } else {
        throw std::runtime_error(xml.string() + " carries no attnseg metadata; export it with seg-export.");
    }
    const json d = json::parse(text);
    const int version = d.value("schema_version", 1);
    if (version > kSchemaVersion)
        throw std::runtime_error("metadata schema_version " + std::to_string(version) + " is newer than this "
                                 "example reads (" + std::to_string(kSchemaVersion) + "); written by attnseg " +
                                 d.value("toolkit_version", std::string("?")));
    Metadata m;
    m.task = d.value("task", m.task);
    if (m.task != "binary" && m.task != "multiclass")
        throw std::runtime_error("a " + m.task + " model; this example runs binary and multiclass models");
    m.classes = d.value("classes", std::vector<std::string>{"foreground"});
    m.output = d.value("output", m.output);
    m.layout = d.value("input_layout", m.layout);
    m.embedded = d.value("preprocessing_embedded", false);
    m.threshold = d.value("threshold", 0.5f);
    if (auto v = field(d, "resize_policy")) m.resize_policy = v->get<std::string>();
    if (auto v = field(d, "input_interpolation")) m.interpolation = v->get<std::string>();
    if (auto v = field(d, "input_name")) m.input_name = v->get<std::string>();
    if (auto v = field(d, "input_divisor")) m.divisor = v->get<int>();
    if (d.contains("normalization")) {
        const json& n = d["normalization"];
        m.mean = n.value("mean", m.mean);
        m.std = n.value("std", m.std);
        m.channel_order = n.value("channel_order", m.channel_order);
        m.pixel_scale = n.value("pixel_scale", m.pixel_scale);
    }
    return m;
}

// ------------------------------------------------------------------------------------ preprocessing
struct Placement {  // where the image content sits in the model input (attnseg.resize_policy.Placement)
    cv::Size image, input;
    int top = 0, left = 0, height = 0, width = 0;
};

// Resize like attnseg.imaging.resize_image: "area" = area when shrinking both sides, bilinear
// otherwise; "linear" = bilinear always (the model's recorded input_interpolation).
static cv::Mat resize_image(const cv::Mat& img, cv::Size size, const std::string& interpolation) {
    if (img.size() == size) return img;
    const bool shrink = interpolation == "area" && img.rows > size.height && img.cols > size.width;
    cv::Mat out;
    cv::resize(img, out, size, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    return out;
}

// Decode to 8-bit BGR as attnseg.imaging.read_image / to_bgr8 do.
static cv::Mat read_bgr8(const fs::path& path) {
    cv::Mat img = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
    if (img.empty()) throw std::runtime_error("cannot decode " + path.string());
    if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257.0, 0.5);  // (x / 257 + 0.5) truncated
    if (img.channels() == 1) cv::cvtColor(img, img, cv::COLOR_GRAY2BGR);
    if (img.channels() == 4) cv::cvtColor(img, img, cv::COLOR_BGRA2BGR);
    return img;
}

struct Prepared {
    ov::Tensor tensor;
    Placement placement;
};

static Prepared prepare(const cv::Mat& bgr, const Metadata& m, const ov::PartialShape& shape, ov::element::Type type) {
    const bool nhwc = m.layout == "NHWC";
    const auto& hd = shape[nhwc ? 1 : 2];
    const auto& wd = shape[nhwc ? 2 : 3];
    Placement p{bgr.size(), bgr.size(), 0, 0, bgr.rows, bgr.cols};
    cv::Mat fed;
    if (hd.is_static() && wd.is_static()) {  // static model: stretch or letterbox to its size
        p.input = cv::Size(int(wd.get_length()), int(hd.get_length()));
        p.height = p.input.height;
        p.width = p.input.width;
        if (m.resize_policy == "letterbox") {
            const double scale = std::min(double(p.input.height) / bgr.rows, double(p.input.width) / bgr.cols);
            p.height = std::min(p.input.height, std::max(1, int(std::nearbyint(bgr.rows * scale))));
            p.width = std::min(p.input.width, std::max(1, int(std::nearbyint(bgr.cols * scale))));
            p.top = (p.input.height - p.height) / 2;
            p.left = (p.input.width - p.width) / 2;
        }
        fed = resize_image(bgr, cv::Size(p.width, p.height), m.interpolation);
        if (p.height != p.input.height || p.width != p.input.width) {
            // pad colour = the normalization mean in pixels (attnseg.resize_policy.pad_color), BGR
            std::vector<double> px;
            for (float v : m.mean) px.push_back(std::clamp(std::nearbyint(double(v) * m.pixel_scale), 0.0, 255.0));
            cv::Scalar pad = px.size() >= 3 ? (m.channel_order == "RGB" ? cv::Scalar(px[2], px[1], px[0])
                                                                        : cv::Scalar(px[0], px[1], px[2]))
                                            : cv::Scalar(px[0], px[0], px[0]);
            cv::copyMakeBorder(fed, fed, p.top, p.input.height - p.top - p.height, p.left,
                               p.input.width - p.left - p.width, cv::BORDER_CONSTANT, pad);
        }
    } else {  // dynamic model: pad bottom/right to a multiple of the divisor (edge replicated)
        const int ph = (bgr.rows + m.divisor - 1) / m.divisor * m.divisor;
        const int pw = (bgr.cols + m.divisor - 1) / m.divisor * m.divisor;
        cv::copyMakeBorder(bgr, fed, 0, ph - bgr.rows, 0, pw - bgr.cols, cv::BORDER_REPLICATE);
        p.input = fed.size();
    }
    const size_t H = fed.rows, W = fed.cols;
    const auto& cd = shape[nhwc ? 3 : 1];
    const size_t C = cd.is_static() ? size_t(cd.get_length()) : 3;  // 1: a grey model
    if (C != 1 && C != 3) throw std::runtime_error("the image input must have 1 or 3 channels");
    Prepared out{ov::Tensor(type, nhwc ? ov::Shape{1, H, W, C} : ov::Shape{1, C, H, W}), p};
    cv::Mat img = fed;  // attnseg.imaging.normalize: channel order, / pixel_scale, - mean, / std (float32)
    if (C == 1) cv::cvtColor(fed, img, cv::COLOR_BGR2GRAY);
    else if (!m.embedded && m.channel_order == "RGB") cv::cvtColor(fed, img, cv::COLOR_BGR2RGB);
    if (m.embedded) {  // the IR normalizes u8 BGR (or grey) pixels itself
        if (type != ov::element::u8 || !nhwc) throw std::runtime_error("embedded preprocessing expects u8 NHWC");
        img.copyTo(cv::Mat(img.size(), CV_8UC(int(C)), out.tensor.data<uint8_t>()));
        return out;
    }
    if (type != ov::element::f32) throw std::runtime_error("a raw-input IR must take f32");
    std::vector<cv::Mat> planes;
    cv::split(img, planes);
    float* data = out.tensor.data<float>();
    for (size_t c = 0; c < C; ++c) {
        cv::Mat f;
        planes[c].convertTo(f, CV_32F);
        for (size_t i = 0; i < H * W; ++i) {
            const float x = f.ptr<float>()[i] / m.pixel_scale;
            const float v = (x - m.mean[c]) / m.std[c];
            if (nhwc) data[i * C + c] = v; else data[c * H * W + i] = v;
        }
    }
    return out;
}

// ------------------------------------------------------------------------------------ postprocessing
// Rows/columns of a (h, w) output map holding image content (attnseg.resize_policy.content_box).
static cv::Rect content_box(const Placement& p, cv::Size map) {
    auto axis = [](int start, int length, int full, int size, int& a, int& b) {
        if (size == full) { a = start; b = start + length; return; }
        const double lo = double(start) * size / full, hi = double(start + length) * size / full;
        a = int(std::ceil(lo - 1e-9));
        b = int(std::floor(hi + 1e-9));
        if (b <= a) { a = std::min(size - 1, int((lo + hi) / 2)); b = a + 1; }
    };
    int r0, r1, c0, c1;
    axis(p.top, p.height, p.input.height, map.height, r0, r1);
    axis(p.left, p.width, p.input.width, map.width, c0, c1);
    return cv::Rect(c0, r0, c1 - c0, r1 - r0);
}

static cv::Mat to_image_size(const cv::Mat& plane, const Placement& p, int interpolation) {
    cv::Mat crop = plane(content_box(p, plane.size())).clone();
    if (crop.size() == p.image) return crop;
    cv::Mat out;
    cv::resize(crop, out, p.image, 0, 0, interpolation);
    return out;
}

// Main output -> mask at the image size, as attnseg.runtime.postprocess.decode does: scores are
// resized bilinearly to the image first, then thresholded / arg-maxed; a mask output is resized nearest.
static cv::Mat decode(const ov::Tensor& out, const Metadata& m, const Placement& p) {
    const ov::Shape s = out.get_shape();
    const int h = int(s[s.size() - 2]), w = int(s[s.size() - 1]);
    if (m.output == "mask") {
        cv::Mat ids;
        if (out.get_element_type() == ov::element::u8)
            ids = cv::Mat(h, w, CV_8U, const_cast<void*>(out.data())).clone();
        else
            cv::Mat(h, w, CV_32S, const_cast<void*>(out.data())).convertTo(ids, CV_8U);
        return to_image_size(ids, p, cv::INTER_NEAREST);
    }
    const int channels = s.size() == 4 ? int(s[1]) : 1;
    const float* data = out.data<const float>();
    auto plane = [&](int c) { return cv::Mat(h, w, CV_32F, const_cast<float*>(data) + size_t(c) * h * w); };
    cv::Mat mask;
    if (m.task == "binary" && channels == 2) {  // binary pair: channel 1 wins where the logit beats logit(t)
        cv::Mat margin = plane(1) - plane(0);
        mask = to_image_size(margin, p, cv::INTER_LINEAR) > 0.f;
    } else if (channels == 1) {
        const float t = m.threshold;
        const float cut = m.output == "logits" ? float(std::log(double(t) / (1.0 - double(t)))) : t;
        mask = to_image_size(plane(0), p, cv::INTER_LINEAR) > cut;
    } else {  // multiclass: argmax over resized planes, ties to the lower class id
        cv::Mat best = to_image_size(plane(0), p, cv::INTER_LINEAR);
        mask = cv::Mat::zeros(p.image, CV_8U);
        for (int c = 1; c < channels; ++c) {
            cv::Mat sc = to_image_size(plane(c), p, cv::INTER_LINEAR);
            cv::Mat better = sc > best;
            mask.setTo(c, better);
            sc.copyTo(best, better);
        }
        return mask;  // class ids
    }
    return mask / 255;  // 0/1
}

// ------------------------------------------------------------------------------------ the app
struct Args {
    fs::path model, input, out;
    std::string device = "CPU", precision = "default";
    long max_frames = -1;
};

static Args parse_args(int argc, char** argv) {
    Args a;
    std::vector<std::string> pos;
    for (int i = 1; i < argc; ++i) {
        const std::string k = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::runtime_error(k + " needs a value");
            return argv[++i];
        };
        if (k == "-o" || k == "--output") a.out = value();
        else if (k == "-d" || k == "--device") a.device = value();
        else if (k == "--inference-precision" || k == "--infer-precision") a.precision = value();
        else if (k == "--max-frames") a.max_frames = std::stol(value());
        else if (k == "-h" || k == "--help") {
            std::cout << "usage: attnseg_infer MODEL INPUT -o OUT [-d DEVICE] [--inference-precision "
                         "default|f32|bf16|f16] [--max-frames N]\n";
            std::exit(0);
        } else if (!k.empty() && k[0] == '-' && k.size() > 1 && !std::isdigit(static_cast<unsigned char>(k[1])))
            throw std::runtime_error("unknown option " + k);
        else pos.push_back(k);
    }
    if (pos.size() != 2 || a.out.empty()) throw std::runtime_error("usage: attnseg_infer MODEL INPUT -o OUT");
    a.model = pos[0];
    a.input = pos[1];
    if (a.precision == "auto")
        throw std::runtime_error("--inference-precision auto is measured by the Python runtime; pass the precision "
                                 "seg-infer reports (inference_precision in its summary.json), or default");
    if (a.precision != "default" && a.precision != "f32" && a.precision != "bf16" && a.precision != "f16")
        throw std::runtime_error("--inference-precision takes default, f32, bf16 or f16");
    return a;
}

static bool is_image(const fs::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), ::tolower);
    for (const char* s : {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
        if (e == s) return true;
    return false;
}

int main(int argc, char** argv) try {
    const Args args = parse_args(argc, argv);
    fs::path xml = args.model;
    if (fs::is_directory(xml)) xml /= "model.xml";

    ov::Core core;
    std::shared_ptr<ov::Model> model = core.read_model(xml.string());
    const Metadata meta = read_metadata(model, xml);
    ov::AnyMap config{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY)};
    if (args.precision != "default") config.emplace(ov::hint::inference_precision(ov::element::Type(args.precision)));
    ov::CompiledModel compiled = core.compile_model(model, args.device, config);
    ov::InferRequest request = compiled.create_infer_request();

    ov::Output<const ov::Node> input = compiled.input();
    for (const auto& port : compiled.inputs())
        if (port.get_names().count(meta.input_name)) input = port;
    ov::Output<const ov::Node> output = compiled.output(0);
    for (const auto& port : compiled.outputs())
        if (port.get_names().count(meta.output)) output = port;
    const ov::PartialShape in_shape = input.get_partial_shape();
    // seg-infer writes binary models' masks as 0/255 and class ids otherwise (attnseg.runtime.codec)
    const ov::PartialShape out_shape = output.get_partial_shape();
    const bool one_channel = meta.output != "mask" && out_shape.rank().is_static() && out_shape.size() == 4 &&
                             out_shape[1].is_static() && out_shape[1].get_length() == 1;
    const bool binary = meta.task == "binary" || one_channel;
    std::cout << "[ INFO ] " << xml.filename().string() << ": " << meta.task << " " << meta.output << ", input "
              << in_shape << " " << (meta.embedded ? "embedded preprocessing" : "normalized here") << ", resize "
              << meta.resize_policy << ", threshold " << meta.threshold << ", on " << args.device << " ("
              << compiled.get_property(ov::hint::inference_precision) << ")\n";

    // the frames: an image, a folder, a video or a camera
    std::vector<fs::path> images;
    cv::VideoCapture video;
    const bool camera = !args.input.empty() && std::all_of(args.input.string().begin(), args.input.string().end(),
                                                            ::isdigit) && !fs::exists(args.input);
    if (camera) video.open(std::stoi(args.input.string()));
    else if (fs::is_directory(args.input)) {
        for (const auto& e : fs::directory_iterator(args.input))
            if (e.is_regular_file() && is_image(e.path())) images.push_back(e.path());
        std::sort(images.begin(), images.end());
    } else if (is_image(args.input)) images.push_back(args.input);
    else video.open(args.input.string());
    if (images.empty() && !video.isOpened()) throw std::runtime_error("cannot open input " + args.input.string());
    fs::create_directories(args.out / "masks");

    std::vector<double> latencies;
    const auto t_start = std::chrono::steady_clock::now();
    for (long i = 0; args.max_frames < 0 || i < args.max_frames; ++i) {
        cv::Mat frame;
        std::string stem;
        if (!images.empty()) {
            if (size_t(i) >= images.size()) break;
            frame = read_bgr8(images[i]);
            stem = images[i].stem().string();
        } else {
            if (!video.read(frame) || frame.empty()) break;
            char name[32];
            std::snprintf(name, sizeof(name), "frame_%06ld", i);
            stem = name;
        }
        const auto t0 = std::chrono::steady_clock::now();
        Prepared prep = prepare(frame, meta, in_shape, input.get_element_type());
        request.set_tensor(input, prep.tensor);
        request.infer();
        cv::Mat mask = decode(request.get_tensor(output), meta, prep.placement);
        latencies.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (binary) mask = mask * 255;  // seg-infer: binary masks 0/255, multiclass class ids
        cv::imwrite((args.out / "masks" / (stem + ".png")).string(), mask);
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    if (latencies.empty()) throw std::runtime_error("no frame read from " + args.input.string());

    std::vector<double> sorted = latencies;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                            : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
    double sum = 0;
    for (double v : sorted) sum += v;
    std::printf("[ INFO ] Count: %zu frames, Latency (preprocess + infer + decode): Median %.2f ms, Average %.2f ms, "
                "Min %.2f ms, Max %.2f ms; Throughput %.2f FPS (with reading and writing files)\n",
                sorted.size(), median, sum / sorted.size(), sorted.front(), sorted.back(), sorted.size() / wall);
    return 0;
} catch (const std::exception& e) {
    std::cerr << "attnseg_infer: error: " << e.what() << "\n";
    return 2;
}
