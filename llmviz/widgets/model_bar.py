"""The model picker: bundled models, recent ones, a hub id field, browse for a folder or .gguf."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QWidget,
)

from ..core.bundled import BUNDLED_MODELS
from ..core.specs import DEVICES, DTYPES, ModelSpec


class ModelBar(QWidget):
    """Emits `sig_load(ModelSpec)` when the user asks for a model."""

    sig_load = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = QComboBox()
        self.source.setEditable(True)
        self.source.setMinimumContentsLength(24)  # shrinks to this in a narrow window, widens with it
        self.source.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.source.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.source.lineEdit().setPlaceholderText("bundled:smollm2, a hub id (gpt2), a folder or a .gguf file")
        for model in BUNDLED_MODELS.values():
            self.source.addItem(f"{model.source}", model.source)
            self.source.setItemData(self.source.count() - 1, f"{model.title}\n{model.description}", 3)
        self.source.lineEdit().returnPressed.connect(self.request_load)
        self.source.currentTextChanged.connect(lambda _: self.trust.setChecked(False))
        browse = QToolButton()
        browse.setText("Folder…")
        browse.setToolTip("Load a model folder saved with save_pretrained (config.json, weights, tokenizer)")
        browse.clicked.connect(self._browse_folder)
        gguf = QToolButton()
        gguf.setText(".gguf…")
        gguf.setToolTip("Load a GGUF file (dequantized by transformers)")
        gguf.clicked.connect(self._browse_gguf)
        self.device = QComboBox()
        self.device.addItems(list(DEVICES))
        self.device.setToolTip("auto: CUDA when available (device_map='auto' spreads a big model over GPUs and CPU), else CPU")
        self.dtype = QComboBox()
        self.dtype.addItems(list(DTYPES))
        self.dtype.setToolTip("auto: float32 on CPU, the checkpoint's own dtype on CUDA")
        self.trust = QCheckBox("Allow this model's own code")
        self.trust.setToolTip("trust_remote_code for this model only. Models that ship Python code run it on your "
                              "machine: allow it only for authors you trust. Resets when you pick another model.")
        self.load_button = QPushButton("Load")
        self.load_button.setDefault(True)
        self.load_button.clicked.connect(self.request_load)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addWidget(QLabel("Model"))
        layout.addWidget(self.source, 3)
        layout.addWidget(browse)
        layout.addWidget(gguf)
        layout.addWidget(QLabel("Device"))
        layout.addWidget(self.device)
        layout.addWidget(QLabel("dtype"))
        layout.addWidget(self.dtype)
        layout.addWidget(self.trust)
        layout.addWidget(self.load_button)

    def spec(self) -> ModelSpec:
        text = self.source.currentText().strip()
        data = self.source.currentData()
        source = data if data and self.source.itemText(self.source.currentIndex()) == text else text
        return ModelSpec(source, self.device.currentText(), self.dtype.currentText(), self.trust.isChecked())

    def set_spec(self, spec: ModelSpec) -> None:
        i = self.source.findData(spec.source)
        if i >= 0:
            self.source.setCurrentIndex(i)
        else:
            self.source.setEditText(spec.source)
        self.device.setCurrentText(spec.device)
        self.dtype.setCurrentText(spec.dtype)
        self.trust.setChecked(spec.trust_remote_code)

    def remember(self, spec: ModelSpec) -> None:
        """Add a successfully loaded source to the list (after the bundled ones)."""
        if self.source.findData(spec.source) < 0:
            self.source.addItem(spec.source, spec.source)

    def recent(self) -> list[str]:
        bundled = {m.source for m in BUNDLED_MODELS.values()}
        return [self.source.itemData(i) for i in range(self.source.count()) if self.source.itemData(i) not in bundled]

    def request_load(self) -> None:
        spec = self.spec()
        if spec.source:
            self.sig_load.emit(spec)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder (with config.json)")
        if path:
            self.source.setEditText(path)
            self.request_load()

    def _browse_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "GGUF model file", "", "GGUF models (*.gguf);;All files (*)")
        if path:
            self.source.setEditText(path)
            self.request_load()
